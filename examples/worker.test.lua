-- Workers: a separate, single-threaded guest process whose syscalls change
-- what its later syscalls, commands and opens run as.
local vm = provium:vm("workers", "linux")
vm:boot()

local SYS_getuid, SYS_setuid, SYS_unshare = 102, 105, 272
local CLONE_NEWUSER = 0x10000000

test("credentials set by a worker's syscall hold for its commands", function(t)
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS_setuid, 65534).ret, 0)
  t:assert_eq(w:syscall(SYS_getuid).ret, 65534)
  t:assert_eq(w:run("id -u").stdout, "65534\n")
  t:assert_eq(w:run("id", {"-u"}).stdout, "65534\n") -- program + argv, as vm:run
  t:assert_eq(vm:run("id -u").stdout, "0\n")        -- the agent is untouched
end)

test("a worker may enter a new user namespace", function(t)
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS_unshare, CLONE_NEWUSER).ret, 0)
  local status = vm:read_file("/proc/" .. w:handle() .. "/status")
  t:assert_contains(status, "Threads:\t1\n")
end)

test("OS errors carry upstream's (os error N) and (errno N) forms and the errno name", function(t)
  local w = vm:spawn_worker()
  local e = t:assert_raises(function() w:run("/no/such/program", {}) end)
  t:assert_contains(e, "No such file or directory (os error 2, ENOENT) (errno 2)")
  t:assert_eq(tonumber(e:match("errno (%d+)")), 2)
end)

test("kill(); join() ends the worker process, as upstream's", function(t)
  local w = vm:spawn_worker()
  local pid = w:handle()
  w:kill(); t:assert_eq(w:join(), 128 + 15) -- exit status: 128 + SIGTERM
  t:assert(not vm:run("test -d /proc/" .. pid):ok(), "the worker process is gone")
  t:assert_contains(t:assert_raises(function() w:syscall(39) end), "was joined")
end)
