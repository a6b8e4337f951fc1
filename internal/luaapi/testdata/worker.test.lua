-- Workers are single-threaded guest processes: namespaces, credentials,
-- root and cwd changed by their syscalls apply to all their later
-- syscalls, commands and opens.
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.
local vm = provium:vm("worker", "linux", {memory = "256M", agent_timeout = 180})
vm:boot()

local SYS = {
  getpid = 39, chdir = 80, getuid = 102, setuid = 105, setgid = 106,
  getgid = 104, setgroups = 116, getgroups = 115, chroot = 161,
  unshare = 272, setns = 308,
}
local CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000

local function cstr(s) return s .. "\0" end

local function threads(pid)
  return vm:read_file("/proc/" .. pid .. "/status"):match("Threads:%s*(%d+)")
end

test("a worker is one single-threaded process", function(t)
  local w = vm:spawn_worker()
  t:assert_eq(threads(w:handle()), "1")
  t:assert_eq(w:syscall(SYS.getpid).ret, w:handle())
  t:assert_eq(w:run("echo $PPID").stdout, w:handle() .. "\n")
end)

test("unshare(CLONE_NEWUSER|CLONE_NEWNS) holds for later syscalls and runs", function(t)
  local w = vm:spawn_worker()
  local r = w:syscall(SYS.unshare, CLONE_NEWUSER | CLONE_NEWNS)
  t:assert_eq(r.ret, 0, "unshare errno " .. r.errno)
  t:assert_eq(threads(w:handle()), "1")
  local theirs = vm:run("readlink /proc/" .. w:handle() .. "/ns/user").stdout
  t:assert(theirs ~= vm:run("readlink /proc/self/ns/user").stdout, "the worker is in the agent's user namespace")
  -- The agent, in the parent namespace, maps the worker's root to root.
  vm:write_file("/proc/" .. w:handle() .. "/uid_map", "0 0 1\n")
  t:assert_eq(w:syscall(SYS.getuid).ret, 0)
  t:assert_eq(w:run("readlink /proc/self/ns/user").stdout, theirs)
  -- A second worker joins the first one's namespace with setns.
  local w2 = vm:spawn_worker()
  local f = w2:open_file("/proc/" .. w:handle() .. "/ns/user", {read = true})
  r = w2:syscall(SYS.setns, f:fd(), CLONE_NEWUSER)
  t:assert_eq(r.ret, 0, "setns errno " .. r.errno)
  t:assert_eq(w2:run("readlink /proc/self/ns/user").stdout, theirs)
end)

test("setuid, setgid and setgroups hold for later syscalls, runs and opens", function(t)
  vm:write_file("/tmp/root-only", "secret")
  vm:run("chmod 600 /tmp/root-only")
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS.setgroups, {args = {1, 0}, bufs = {string.pack("<I4", 4242)}, ptrs = {1}}).ret, 0)
  t:assert_eq(w:syscall(SYS.setgid, 65534).ret, 0)
  t:assert_eq(w:syscall(SYS.setuid, 65534).ret, 0)
  t:assert_eq(w:syscall(SYS.getuid).ret, 65534)
  t:assert_eq(w:syscall(SYS.getgid).ret, 65534)
  t:assert_eq(w:run("id -u").stdout, "65534\n")
  t:assert_eq(w:run("id", {"-G"}).stdout, "65534 4242\n")
  local e = t:assert_raises(function() w:open_file("/tmp/root-only", {read = true}) end)
  t:assert_contains(e, "Permission denied")
  t:assert_contains(e, "EACCES")
  t:assert_eq(vm:syscall(SYS.getuid).ret, 0)
end)

test("chroot and chdir hold for later runs and opens", function(t)
  vm:run("rm -rf /tmp/nr && mkdir -p /tmp/nr/bin /tmp/nr/data && cp $(readlink -f /bin/sh) /tmp/nr/bin/busybox"
    .. " && ln -s busybox /tmp/nr/bin/sh && ln -s busybox /tmp/nr/bin/cat && echo inside > /tmp/nr/data/marker")
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS.chroot, {bufs = {cstr("/tmp/nr")}, ptrs = {0}}).ret, 0)
  t:assert_eq(w:syscall(SYS.chdir, {bufs = {cstr("/data")}, ptrs = {0}}).ret, 0)
  -- a relative program path and a relative argument, both in the new root
  t:assert_eq(w:run("../bin/cat", {"marker"}).stdout, "inside\n")
  t:assert_eq(w:run("cat marker; pwd", {env = {PATH = "/bin"}}).stdout, "inside\n/data\n")
  local f = w:open_file("marker", {read = true})
  t:assert_eq(f:read(100), "inside\n")
  f:close()
  local e = t:assert_raises(function() w:run("/no/such/program", {}) end)
  t:assert_contains(e, "worker:run")
  t:assert_contains(e, "ENOENT")
  t:assert_contains(e, "os error 2")
end)

test("worker:run takes every vm:run form", function(t)
  local w = vm:spawn_worker()
  t:assert_eq(w:run("echo", {"a", "b"}).stdout, "a b\n")
  t:assert_eq(w:run("echo", {args = {"c"}}).stdout, "c\n")
  t:assert_eq(w:run("printenv FOO", {env = {FOO = "x"}}).stdout, "x\n")
  t:assert_eq(w:run("cat", {args = {}, stdin = "in"}).stdout, "in")
  t:assert_eq(w:run("pwd", {args = {}, cwd = "/tmp"}).stdout, "/tmp\n")
  local r = w:run("sleep 5", {timeout = "200ms"})
  t:assert_eq(r.status, "timed_out")
  local p = w:run_async("echo", {"async"})
  t:assert_eq(p:wait().stdout, "async\n")
end)

test("the worker executor is a static position-independent executable", function(t)
  -- An exec policy that demands PIE (committed on the agent by a test)
  -- must still let the agent start workers.
  local elf = vm:read_file("/sbin/provium-worker")
  t:assert_eq(elf:sub(1, 4), "\x7fELF")
  t:assert_eq(string.unpack("<I2", elf, 17), 3, "e_type is not ET_DYN")
  t:assert(not elf:find("ld-musl", 1, true), "the worker names a dynamic loader")
  local w = vm:spawn_worker()
  t:assert_eq(w:run("echo started").stdout, "started\n")
end)

test("a failed spawn carries `os error N` and `errno N`, as upstream's suites read them", function(t)
  -- The corpus's psb helpers read the errno of a refused spawn this way.
  local function spawn_errno(fn)
    local ok, err = pcall(fn)
    if ok then return 0 end
    local errno = tonumber(tostring(err):match("errno (%d+)"))
    assert(errno, "unrecognised run() failure: " .. tostring(err))
    return errno, tostring(err)
  end
  local w = vm:spawn_worker()
  local missing = "/nonexistent-provium-binary"
  for name, call in pairs({
    ["worker:run"] = function() w:run(missing, {args = {}}) end,
    ["worker:run_async"] = function() w:run_async(missing, {args = {"--help"}}) end,
    ["vm:run"] = function() vm:run(missing, {}) end,
    ["vm:run_async"] = function() vm:run_async(missing, {args = {}}) end,
  }) do
    local errno, text = spawn_errno(call)
    t:assert_eq(errno, 2, name .. " did not fail with errno 2")
    t:assert_contains(text, name)
    t:assert_contains(text, "(os error 2, ENOENT)")
  end
  -- The shell form runs /bin/sh, which reports the missing program itself.
  t:assert_eq(spawn_errno(function() w:run(missing) end), 0)
  vm:write_file("/tmp/not-executable", "#!/bin/sh\n")
  local errno, text = spawn_errno(function() w:run("/tmp/not-executable", {}) end)
  t:assert_eq(errno, 13, text)
  t:assert_contains(text, "os error 13")
end)
