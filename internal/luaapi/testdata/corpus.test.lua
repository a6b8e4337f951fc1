-- Semantics real suites (peios/integration-tests) depend on.
--
-- console():expect keeps no state: it searches the current boot's output,
-- so a line matches however often it is expected and whether or not it
-- came before an earlier expect's match (the suite's phase2 test waits
-- for a dependency's line after its dependent's; its attempts and
-- model-services tests expect one line again); after vm:reset() — also
-- after a power cut and reset, as its power-loss tests do — only the new
-- boot's output counts.
-- A bare `mem` is a malformed early option: the kernel warns once per boot,
-- and loglevel=5 puts warnings (only a few lines) on the console.
local MARK = "Malformed early option 'mem'"
local vm = provium:vm("cr", "linux", {memory = "256M", agent_timeout = 180,
  kernel_cmdline_append = "loglevel=5 mem", disks = {{id = "m", scratch = "8M", mediated = true}}})

local function count(s, pat)
  local n, at = 0, 1
  while true do
    local i = s:find(pat, at, true)
    if not i then return n end
    n, at = n + 1, i + #pat
  end
end

test("one line expected twice, and a line printed before an earlier match", function(t)
  vm:boot()
  local c = vm:console()
  t:assert_eq(c:expect(MARK, 60), MARK)
  t:assert_eq(c:expect(MARK, 0), MARK) -- again, at once
  vm:run("echo pt-pulled started > /dev/console; echo pt-root started > /dev/console"):assert_ok()
  t:assert_eq(c:expect("pt-root started", 10), "pt-root started")
  -- printed before the line just matched, through another handle too
  t:assert_eq(vm:console():expect("pt-pulled started", 10), "pt-pulled started")
  t:assert_eq(c:expect("pt-root started", 0), "pt-root started")
end)

test("after vm:reset() only the new boot's output satisfies expect", function(t)
  local c = vm:console()
  vm:run("echo boot-one-only > /dev/console"):assert_ok()
  t:assert_eq(c:expect("boot-one-only", 10), "boot-one-only")
  vm:reset()
  t:assert_eq(c:expect(MARK, 60), MARK)
  t:assert_eq(count(c:read_log(), MARK), 2)
  local e = t:assert_raises(function() c:expect("boot-one-only", "300ms") end)
  t:assert_contains(e, "console:expect timed out waiting for `boot-one-only`")
  t:assert_contains(c:read_log(), "boot-one-only") -- still in the log
  -- `since` names the start itself
  t:assert_eq(c:expect("boot-one-only", 0, {since = 0}), "boot-one-only")
  vm:run("echo boot-one-only > /dev/console"):assert_ok()
  t:assert_eq(c:expect("boot-one-only", 10), "boot-one-only")
end)

test("power cut and reset: the mark waited for is the next boot's", function(t)
  -- as the suite's power_cut helper: cut, reset, wait for the boot's
  -- late mark (here one that the test prints a moment into the new boot)
  vm:run("echo phase2-mark > /dev/console"):assert_ok()
  t:assert_eq(vm:console():expect("phase2-mark", 10), "phase2-mark")
  vm:disk("m"):power_cut()
  vm:reset()
  vm:run_async("sleep 1; echo phase2-mark > /dev/console")
  t:assert_eq(vm:console():expect("phase2-mark", 60), "phase2-mark")
  t:assert_eq(count(vm:console():read_log(), "phase2-mark"), 2)
end)

test("kill on a process that has just exited, then wait", function(t)
  -- as the corpus stops a stream that may have ended: kill, then wait
  local s = vm:run_async("echo done")
  wait_until(function() return s:status() ~= "running" end, {timeout = 10, interval = 0.05})
  s:kill("kill")
  s:signal("term")
  local r = s:wait("5s")
  t:assert_eq(r.exit_code, 0)
  t:assert_eq(r.stdout, "done\n")
  -- once waited, the process is known gone: the spec's error
  local e = t:assert_raises(function() s:kill("kill") end)
  t:assert_contains(e, "proc: process " .. s:handle() .. " has exited")
end)
