-- A worker's life as real suites use it: kill() signals the worker process
-- itself and join() reaps it, so what the worker held is released; its
-- signal dispositions are those of upstream's worker (a Rust program).
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.
local vm = provium:vm("worker-life", "linux", {memory = "256M", agent_timeout = 180})
vm:boot()

local NR = {
  read = 0, write = 1, close = 3, kill = 62, getpid = 39, nanosleep = 35,
  tgkill = 234, openat = 257, pipe2 = 293,
}
local SIGKILL, SIGBUS, SIGPIPE, SIGTERM = 9, 7, 13, 15
local EINTR, EPIPE = 4, 32
local AT_FDCWD, O_RDWR = -100, 2

local function cstr(s) return s .. "\0" end

-- mask reads one hex signal mask line (SigCgt, SigIgn, SigBlk) of a
-- /proc/<pid>/status text.
local function mask(status, name)
  return tonumber(status:match(name .. ":%s*(%x+)"), 16)
end

local function has(m, sig) return m & (1 << (sig - 1)) ~= 0 end

-- pipe makes a pipe inside w and returns its read and write ends.
local function pipe(t, w)
  local r = w:syscall(NR.pipe2, {args = {0, 0}, bufs = {string.rep("\0", 8)}, ptrs = {0}})
  t:assert_eq(r.ret, 0, "pipe2 errno " .. r.errno)
  return string.unpack("<i4i4", r.out_bufs[1])
end

-- blocked_thread finds the thread of pid that sits in syscall nr other
-- than the main one, waiting up to about 30 s for it to get there.
local function blocked_thread(pid, nr)
  for _ = 1, 300 do
    for tid in vm:run("ls /proc/" .. pid .. "/task").stdout:gmatch("%d+") do
      if tonumber(tid) ~= pid then
        local ok, sc = pcall(vm.read_file, vm, "/proc/" .. pid .. "/task/" .. tid .. "/syscall")
        if ok and tonumber(sc:match("^(%-?%d+)")) == nr then
          return tonumber(tid)
        end
      end
    end
    vm:run("sleep 0.1")
  end
end

test("kill(); join() ends the worker process and releases what it held", function(t)
  vm:run("rm -f /tmp/held && mkfifo /tmp/held"):assert_ok()
  local w = vm:spawn_worker()
  local pid = w:handle()
  -- The worker holds the FIFO open for writing (and reading, so the open
  -- does not wait): a reader sees EOF only once the worker process exits.
  local fd = w:syscall(NR.openat, {args = {AT_FDCWD, 0, O_RDWR}, bufs = {cstr("/tmp/held")}, ptrs = {1}}).ret
  t:assert(fd >= 0, "the worker opens the FIFO")
  t:assert_eq(w:syscall(NR.write, {args = {fd, 0, 3}, bufs = {"hi\n"}, ptrs = {1}}).ret, 3)
  local reader = vm:run_async("cat /tmp/held")
  -- Things in flight when the worker dies fail or finish, never hang.
  local child = w:run_async("sleep 300")
  local pending = w:syscall_async(NR.nanosleep, {args = {0, 0}, bufs = {string.pack("<i8i8", 300, 0)}, ptrs = {0}})
  t:assert_eq(reader:status(), "running", "the FIFO still has a writer")

  w:kill(); t:assert_eq(w:join(), 128 + SIGTERM, "join reports the signal that ended the worker")

  local r = reader:wait("60s")
  t:assert_eq(r.exit_code, 0, "the reader saw EOF: the worker's fds are closed")
  t:assert_eq(r.stdout, "hi\n")
  t:assert(not vm:run("test -d /proc/" .. pid):ok(), "the worker process is gone")
  t:assert_eq(child:wait("60s").signal, SIGKILL, "the worker's children die with it")
  local e = t:assert_raises(function() pending:await() end)
  t:assert_contains(e, "the worker process has exited")

  -- Every operation afterwards names the worker and the operation.
  for _, op in ipairs({
    {"syscall", function() w:syscall(NR.getpid) end},
    {"syscall_async", function() w:syscall_async(NR.getpid) end},
    {"run", function() w:run("true") end},
    {"run_async", function() w:run_async("true") end},
    {"open_file", function() w:open_file("/tmp/x", {read = true}) end},
    {"kill", function() w:kill() end},
    {"join", function() w:join() end},
  }) do
    e = t:assert_raises(op[2])
    t:assert_contains(e, "worker:" .. op[1] .. ": worker (pid " .. pid .. ") was joined: its process has exited")
  end
  t:assert_eq(w:handle(), pid)
  t:assert_contains(tostring(w), "joined")
  w:close()
  w:close()
end)

test("join() alone ends a live worker, which exits 0", function(t)
  local w = vm:spawn_worker()
  local pid = w:handle()
  t:assert_eq(w:join(), 0)
  t:assert(not vm:run("test -d /proc/" .. pid):ok(), "the worker process is gone")
end)

test("a worker killed by a raw signal still takes kill(); join()", function(t)
  local target = vm:spawn_worker()
  local pid = target:syscall(NR.getpid).ret
  t:assert_eq(vm:syscall(62 --[[kill]], pid, SIGKILL).ret, 0)
  target:kill(); t:assert_eq(target:join(), 128 + SIGKILL)
  -- kill with an explicit signal on a worker that is already gone, too.
  local other = vm:spawn_worker()
  vm:syscall(NR.kill, other:handle(), SIGKILL)
  other:kill(SIGKILL)
  other:kill("term")
  other:join()
end)

test("the worker catches SIGBUS: a read blocked in syscall_async comes back EINTR", function(t)
  local W = vm:spawn_worker()
  local pid = W:syscall(NR.getpid).ret
  local status = vm:read_file("/proc/" .. pid .. "/status")
  t:assert(has(mask(status, "SigCgt"), SIGBUS), "the worker catches SIGBUS")
  t:assert_eq(status:match("Threads:%s*(%d+)"), "1")
  local rfd, wfd = pipe(t, W)
  local pending = W:syscall_async(NR.read, {args = {rfd, 0, 1}, bufs = {"\0"}, ptrs = {1}})
  local tid = blocked_thread(pid, NR.read)
  t:assert(tid, "a read of an empty pipe blocks on a thread of its own")
  t:assert_eq(vm:syscall(NR.tgkill, pid, tid, SIGBUS).ret, 0)
  local r = pending:await("60s")
  t:assert_eq(r.ret, -1, "the signal interrupts the read")
  t:assert_eq(r.errno, EINTR)
  t:assert_eq(W:syscall(NR.getpid).ret, pid, "and the worker lives on")
  W:syscall(NR.close, rfd)
  W:syscall(NR.close, wfd)
end)

test("the worker ignores SIGPIPE; its commands start with it at default", function(t)
  local w = vm:spawn_worker()
  local status = vm:read_file("/proc/" .. w:handle() .. "/status")
  t:assert(has(mask(status, "SigIgn"), SIGPIPE), "the worker ignores SIGPIPE")
  -- A write to a pipe nobody reads fails with EPIPE and the worker lives.
  local rfd, wfd = pipe(t, w)
  w:syscall(NR.close, rfd)
  local r = w:syscall(NR.write, {args = {wfd, 0, 1}, bufs = {"x"}, ptrs = {1}})
  t:assert_eq(r.ret, -1)
  t:assert_eq(r.errno, EPIPE)
  t:assert_eq(w:syscall(NR.getpid).ret, w:handle())
  -- A command gets default dispositions and no blocked signal.
  local own = w:run("grep -E 'SigIgn|SigBlk' /proc/self/status").stdout
  t:assert(not has(mask(own, "SigIgn"), SIGPIPE), "a worker:run child has SIGPIPE at its default: " .. own)
  t:assert_eq(mask(own, "SigBlk"), 0, "a worker:run child blocks no signal")
  local p = w:run_async("grep SigIgn /proc/self/status")
  t:assert(not has(mask(p:wait().stdout, "SigIgn"), SIGPIPE), "nor has a worker:run_async child")
end)
