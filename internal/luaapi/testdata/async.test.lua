-- Processes, workers and layer-0 syscalls against one booted guest.
local vm = provium:vm("async", "linux", {memory = "256M"})
vm:boot()

local SYS_read, SYS_close, SYS_getpid, SYS_readv = 0, 3, 39, 19
local SYS_nanosleep, SYS_getuid, SYS_openat, SYS_setresuid = 35, 102, 257, 117
local AT_FDCWD = -100

test("run_async wait, status, timeout", function(t)
  local p = vm:run_async("echo out; echo err >&2; exit 4")
  local r = p:wait()
  t:assert_eq(r.exit_code, 4)
  t:assert_eq(r.stdout, "out\n")
  t:assert_eq(r.stderr, "err\n")
  t:assert_eq(p:status(), "exited")
  t:assert_eq(p:wait().exit_code, 4) -- same result again
  local e = t:assert_raises(function() p:kill() end)
  t:assert_contains(e, "proc: process " .. p:handle() .. " has exited")

  local sleeper = vm:run_async("sleep 30")
  t:assert(sleeper:pid() > 1)
  t:assert_eq(sleeper:status(), "running")
  r = sleeper:wait("100ms")
  t:assert_eq(r.status, "timed_out")
  t:assert_eq(r.exit_code, -2)
  t:assert_eq(sleeper:wait().status, "timed_out") -- not killed twice, same result
  e = t:assert_raises(function() sleeper:wait(0) end)
  t:assert_contains(e, "proc:wait: timeout=0 is not allowed")
  e = t:assert_raises(function() vm:run_async("true", {timeout = 1}) end)
  t:assert_eq(e, "vm:run_async: timeout is not honoured here; pass it to proc:wait(timeout)")
end)

test("signals", function(t)
  local p = vm:run_async("sleep 30")
  p:kill("KILL")
  local r = p:wait()
  t:assert_eq(r.status, "signalled")
  t:assert_eq(r.signal, 9)
  t:assert_eq(r.exit_code, -1)
  for _, name in ipairs({"term", "SIGTERM", "15", "Term"}) do
    local q = vm:run_async("sleep 30")
    q:signal(name)
    t:assert_eq(q:wait().signal, 15, name)
  end
  local q = vm:run_async("sleep 30")
  local e = t:assert_raises(function() q:signal("bogus") end)
  t:assert_contains(e, "unknown signal name `bogus`")
  e = t:assert_raises(function() q:kill({}) end)
  t:assert_contains(e, "kill: signal must be int or string, got table")
  q:close()
end)

test("stdin", function(t)
  local p = vm:run_async("cat")
  t:assert_eq(p:stdin_write("hello "), 6)
  p:stdin_write("world")
  p:close_stdin()
  p:close_stdin()
  t:assert_eq(p:wait().stdout, "hello world")
end)

test("output streams deliver every line in order", function(t)
  local p = vm:run_async("i=1; while [ $i -le 10000 ]; do echo line$i; i=$((i+1)); done")
  local s = p:stdout_stream()
  local data = {}
  while true do
    local chunk = s:next(30)
    if chunk == nil then break end
    data[#data + 1] = chunk
  end
  t:assert(s:eof(), "stream did not reach EOF")
  local all = table.concat(data)
  local n = 0
  for line in all:gmatch("[^\n]+") do
    n = n + 1
    if line ~= "line" .. n then t:fail("line " .. n .. " is " .. line) end
  end
  t:assert_eq(n, 10000)
  p:wait()
end)

test("no leak after 1000 run_async/close cycles", function(t)
  local function count() return tonumber(vm:run("ls -d /proc/[0-9]* | wc -l").stdout) end
  local before = count()
  for i = 1, 1000 do
    local p = vm:run_async("sleep 60")
    p:close()
  end
  local after = count()
  t:assert(after <= before + 2, ("guest processes grew from %d to %d"):format(before, after))
end)

test("syscalls; an fd opened by one stays for later calls", function(t)
  local pid = vm:syscall(SYS_getpid)
  t:assert(pid.ret > 0)
  t:assert_eq(pid.errno, 0)
  t:assert_eq(pid.result, pid.ret)
  vm:write_file("/tmp/sc", "syscall data")
  local o = vm:syscall(SYS_openat, {args = {AT_FDCWD, 0, 0, 0}, bufs = {"/tmp/sc\0"}, ptrs = {1}})
  t:assert(o.ret >= 0, "openat errno " .. o.errno)
  local rd = vm:syscall(SYS_read, {args = {o.ret, 0, 7}, bufs = {string.rep("\0", 7)}, ptrs = {1}})
  t:assert_eq(rd.ret, 7)
  t:assert_eq(rd.out_bufs[1], "syscall")
  -- readv with a nested struct iovec pointing at a second buffer
  local iov = string.pack("<I8I8", 0, 5)
  local rv = vm:syscall(SYS_readv, {args = {o.ret, 0, 1}, bufs = {iov, string.rep("\0", 5)},
    ptrs = {1}, nested = {{parent = 1, child = 2, offset = 0}}})
  t:assert_eq(rv.ret, 5)
  t:assert_eq(rv.out_bufs[2], " data")
  vm:syscall(SYS_close, o.ret)
  local bad = vm:syscall(SYS_close, 9999)
  t:assert_eq(bad.ret, -1)
  t:assert_eq(bad.errno, 9) -- EBADF
  local e = t:assert_raises(function() vm:syscall(SYS_getpid, {nested = {{parent = 1, child = 2, offset = 0}}}) end)
  t:assert_contains(e, "nested[1]")
  e = t:assert_raises(function() vm:syscall(1, 2, 3, 4, 5, 6, 7, 8) end)
  t:assert_contains(e, "at most 6 arguments")
  local res = vm:batch(function(b) b:syscall(SYS_getpid) end)
  t:assert_eq(res[1].ok.ret, pid.ret)
end)

test("ioctl and read_mem", function(t)
  -- FIONREAD on an empty pipe-less fd: use /dev/null, which returns ENOTTY
  local o = vm:syscall(SYS_openat, {args = {AT_FDCWD, 0, 0, 0}, bufs = {"/dev/null\0"}, ptrs = {1}})
  local r = vm:ioctl(o.ret, 0x541B, string.rep("\0", 4))
  t:assert_eq(r.ret, -1)
  t:assert_eq(r.errno, 25) -- ENOTTY
  t:assert_eq(#r.out_data, 4)
  vm:syscall(SYS_close, o.ret)
  local mem, errno = vm:read_mem(0, 8)
  t:assert_eq(mem, nil)
  t:assert(errno > 0)
end)

test("syscall_async and pendings", function(t)
  local ts = string.pack("<i8i8", 0, 300000000) -- 0.3 s
  local p = vm:syscall_async(SYS_nanosleep, {args = {0, 0}, bufs = {ts}, ptrs = {0}})
  t:assert_contains(tostring(p), "pending(vm=")
  t:assert_eq(p:done(), false)
  local e = t:assert_raises(function() p:await("10ms") end)
  t:assert_contains(e, "syscall_async: await timed out after 10ms")
  local r = p:await()
  t:assert_eq(r.ret, 0)
  t:assert_eq(p:done(), true)
  e = t:assert_raises(function() p:await() end)
  t:assert_eq(e, "syscall_async: handle already awaited")
end)

test("workers", function(t)
  local w = vm:spawn_worker()
  t:assert(w:handle() > 0)
  t:assert_contains(tostring(w), "worker(pid=" .. w:handle() .. " vm=")
  -- credentials stay in the worker
  local r = w:syscall(SYS_setresuid, 1000, 1000, 1000)
  t:assert_eq(r.ret, 0)
  t:assert_eq(w:syscall(SYS_getuid).ret, 1000)
  t:assert_eq(w:run("id -u").stdout, "1000\n")
  t:assert_eq(vm:syscall(SYS_getuid).ret, 0)
  t:assert_eq(vm:run("id -u").stdout, "0\n")
  local e = t:assert_raises(function() w:kill(true) end)
  t:assert_contains(e, "worker:kill: signal must be int or string, got boolean")
  -- kill signals the worker process itself; its children die with it
  local p = w:run_async("sleep 30")
  w:kill("term")
  t:assert_eq(p:wait().signal, 9)
  t:assert_eq(w:join(), 128 + 15)
  e = t:assert_raises(function() vm:spawn_worker({thread = true}) end)
  t:assert_contains(e, "not supported")
  -- a pending of a closed worker errors
  w = vm:spawn_worker()
  local ts = string.pack("<i8i8", 5, 0)
  local pend = w:syscall_async(SYS_nanosleep, {args = {0, 0}, bufs = {ts}, ptrs = {0}})
  w:close()
  e = t:assert_raises(function() pend:await() end)
  t:assert_contains(e, "worker closed")
end)

test("two workers block concurrently", function(t)
  local ts = string.pack("<i8i8", 1, 500000000) -- 1.5 s
  local function sleep_on(w) return w:syscall_async(SYS_nanosleep, {args = {0, 0}, bufs = {ts}, ptrs = {0}}) end
  local w1, w2 = vm:spawn_worker(), vm:spawn_worker()
  local start = vm:clock():get_ns()
  local p1, p2 = sleep_on(w1), sleep_on(w2)
  p1:await(); p2:await()
  local both = (vm:clock():get_ns() - start) / 1e9
  t:log(("two 1.5 s sleeps took %.2f s"):format(both))
  t:assert(both < 2.7, ("workers did not run concurrently: %.2f s"):format(both))
end)
