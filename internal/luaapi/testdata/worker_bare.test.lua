-- Images that copy only the agent out of the overlay have no
-- provium-worker beside it: spawn_worker still works (the host hands the
-- agent its copy, which lives in memory, not in the guest's files).
local vm = provium:vm("bare", "linux", {memory = "256M", agent_timeout = 180})
vm:boot()

local SYS_getpid = 39

test("spawn_worker works when the image has no worker executor", function(t)
  vm:run("rm /sbin/provium-worker"):assert_ok()
  local w = vm:spawn_worker()
  t:assert_eq(w:syscall(SYS_getpid).ret, w:handle())
  t:assert_eq(w:run("echo $PPID").stdout, w:handle() .. "\n")
  t:assert_contains(vm:run("readlink /proc/" .. w:handle() .. "/exe").stdout, "memfd:provium-worker")
  w:close()
  -- the agent keeps the copy: a second worker, and still nothing on disk
  local w2 = vm:spawn_worker()
  t:assert_eq(w2:syscall(SYS_getpid).ret, w2:handle())
  t:assert(not vm:run("test -e /sbin/provium-worker"):ok(), "a worker binary appeared in the guest's files")
  t:assert_eq(vm:run("ls /run /tmp").stdout:find("provium-worker", 1, true), nil)
end)
