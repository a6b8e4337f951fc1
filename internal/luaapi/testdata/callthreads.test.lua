-- vm:syscall threads, as real suites (peios/integration-tests) expect them:
-- upstream's agent serves every op on a thread of its own that ends with
-- it, and a batch on one thread for all its items. So per-thread state a
-- raw syscall changes (credentials, signal mask, impersonation) holds for
-- that call only, or for the rest of its batch (a batch takes syscalls in
-- the integer form only, so the batch test changes credentials); fds, which
-- are the process's, stay. State that must last goes in a worker, whose
-- syscalls share its one thread. The suite's token-lifecycle test
-- impersonates through vm:syscall and expects the next calls to run on the
-- primary token.
local vm = provium:vm("ct", "linux", {memory = "256M", agent_timeout = 180})
vm:boot()

local SYS_read, SYS_close, SYS_rt_sigprocmask, SYS_getuid = 0, 3, 14, 102
local SYS_geteuid, SYS_setresuid, SYS_gettid, SYS_openat = 107, 117, 186, 257
local AT_FDCWD, SIG_BLOCK = -100, 0
local SIGUSR2 = 1 << (12 - 1)

-- rt_sigprocmask(SIG_BLOCK, {SIGUSR2}, NULL, 8)
local function block_usr2()
  return {args = {SIG_BLOCK, 0, 0, 8}, bufs = {string.pack("<I8", SIGUSR2)}, ptrs = {1}}
end
-- rt_sigprocmask(SIG_BLOCK, NULL, &old, 8): reads the thread's mask
local function read_mask()
  return {args = {SIG_BLOCK, 0, 0, 8}, bufs = {string.rep("\0", 8)}, ptrs = {2}}
end
local function mask_of(r)
  assert(r.ret == 0, "rt_sigprocmask errno " .. tostring(r.errno))
  return (string.unpack("<I8", r.out_bufs[1]))
end

test("a raw setresuid holds for its own call only", function(t)
  t:assert_eq(vm:syscall(SYS_setresuid, 65534, 65534, 65534).ret, 0)
  -- the corpus's check: many later calls, every one on the primary identity
  for _ = 1, 12 do
    t:assert_eq(vm:syscall(SYS_getuid).ret, 0)
    t:assert_eq(vm:syscall(SYS_geteuid).ret, 0)
  end
  t:assert_eq(vm:run("id -u").stdout, "0\n")
end)

test("a signal mask set by vm:syscall ends with the call", function(t)
  t:assert_eq(mask_of(vm:syscall(SYS_rt_sigprocmask, read_mask())) & SIGUSR2, 0)
  t:assert_eq(vm:syscall(SYS_rt_sigprocmask, block_usr2()).ret, 0)
  t:assert_eq(mask_of(vm:syscall(SYS_rt_sigprocmask, read_mask())) & SIGUSR2, 0)
end)

test("each call runs on a thread of its own", function(t)
  local seen = {}
  for _ = 1, 6 do
    local tid = vm:syscall(SYS_gettid).ret
    t:assert(tid > 0)
    t:assert_eq(seen[tid], nil, "two calls ran on thread " .. tid)
    seen[tid] = true
  end
end)

test("an fd opened by vm:syscall stays for later calls", function(t)
  vm:write_file("/tmp/ct", "thread data")
  local o = vm:syscall(SYS_openat, {args = {AT_FDCWD, 0, 0, 0}, bufs = {"/tmp/ct\0"}, ptrs = {1}})
  t:assert(o.ret >= 0, "openat errno " .. o.errno)
  local rd = vm:syscall(SYS_read, {args = {o.ret, 0, 6}, bufs = {string.rep("\0", 6)}, ptrs = {1}})
  t:assert_eq(rd.ret, 6)
  t:assert_eq(rd.out_bufs[1], "thread")
  rd = vm:syscall(SYS_read, {args = {o.ret, 0, 5}, bufs = {string.rep("\0", 5)}, ptrs = {1}})
  t:assert_eq(rd.out_bufs[1], " data")
  t:assert_eq(vm:syscall(SYS_close, o.ret).ret, 0)
end)

test("one batch runs all its syscalls on one thread", function(t)
  local res = vm:batch(function(b)
    b:syscall(SYS_gettid)
    b:syscall(SYS_getuid)
    b:syscall(SYS_setresuid, 65534, 65534, 65534)
    b:syscall(SYS_getuid)
    b:syscall(SYS_geteuid)
    b:syscall(SYS_gettid)
  end)
  t:assert_eq(#res, 6)
  t:assert_eq(res[2].ok.ret, 0)
  t:assert_eq(res[3].ok.ret, 0)
  t:assert_eq(res[4].ok.ret, 65534)
  t:assert_eq(res[5].ok.ret, 65534)
  t:assert_eq(res[6].ok.ret, res[1].ok.ret)
  -- and no further than the batch
  t:assert_eq(vm:syscall(SYS_getuid).ret, 0)
  t:assert_eq(vm:batch(function(b) b:syscall(SYS_geteuid) end)[1].ok.ret, 0)
end)

test("thread state that must last goes in a worker", function(t)
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS_rt_sigprocmask, block_usr2()).ret, 0)
  t:assert(mask_of(w:syscall(SYS_rt_sigprocmask, read_mask())) & SIGUSR2 ~= 0)
  t:assert_eq(w:syscall(SYS_setresuid, 65534, 65534, 65534).ret, 0)
  t:assert_eq(w:syscall(SYS_getuid).ret, 65534)
  t:assert_eq(w:syscall(SYS_gettid).ret, w:handle())
  t:assert_eq(vm:syscall(SYS_getuid).ret, 0)
  w:close()
end)
