-- RunResult: a plain table (fields readable and printable as usual) with
-- ok() and assert_ok() from its metatable.
local string_format, concat = string.format, table.concat
local cmds = setmetatable({}, { __mode = "k" })
local signames = { [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [5] = "SIGTRAP",
  [6] = "SIGABRT", [7] = "SIGBUS", [8] = "SIGFPE", [9] = "SIGKILL", [10] = "SIGUSR1", [11] = "SIGSEGV",
  [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM", [17] = "SIGCHLD",
  [18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP", [28] = "SIGWINCH" }

local RunResult = { __name = "RunResult" }
RunResult.__index = RunResult

local TAIL = 4096
local function tail(s)
  if #s > TAIL then s = s:sub(-TAIL) end
  return string_format("%q", s)
end

function RunResult:ok()
  return self.status == "exited" and self.exit_code == 0
end

function RunResult:assert_ok()
  if self:ok() then return self end
  local what
  if self.status == "signalled" then
    what = string_format("status=signalled signal=%d (%s)", self.signal, signames[self.signal] or "?")
  elseif self.status == "timed_out" then
    what = "status=timed_out"
  else
    what = string_format("status=exited code=%d", self.exit_code)
  end
  local msg = string_format("command failed: %s stdout=%s stderr=%s", what, tail(self.stdout), tail(self.stderr))
  local argv = cmds[self]
  if argv then
    local q = {}
    for i, a in ipairs(argv) do q[i] = string_format("%q", a) end
    msg = msg .. " cmd=" .. concat(q, " ")
  end
  error(msg, 2)
end

local function new_result(t, argv)
  cmds[t] = argv
  return setmetatable(t, RunResult)
end

return { new_result = new_result }
