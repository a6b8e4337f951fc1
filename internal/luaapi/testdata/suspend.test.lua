-- Suspend to RAM (S3) and vm:wakeup against one booted guest. Profile `s3`
-- is the default image booted as a bzImage with SeaBIOS: a guest resumes
-- from S3 only through a firmware with a resume path (qboot has none) and
-- only when it was not entered through PVH.
local vm = provium:vm("z", "s3", {memory = "256M"})
vm:boot()

test("wakeup of a running guest is an error", function(t)
  t:assert_eq(vm:is_suspended(), false)
  local e = t:assert_raises(function() vm:wakeup() end)
  t:assert_contains(e, "vm:wakeup: vm `z` is not suspended")
end)

test("suspend, is_suspended, wakeup", {timeout = 60}, function(t)
  t:assert_eq(vm:run("cat /sys/power/state").stdout:find("mem", 1, true) ~= nil, true)
  local since = vm:console():log_size()
  vm:run("(sleep 0.3; echo mem > /sys/power/state; echo RESUMED-MARK > /dev/console) >/dev/null 2>&1 &"):assert_ok()
  wait_until(function() return vm:is_suspended() end, {timeout = 20, desc = "guest suspended"})
  t:assert_eq(vm:state(), "booted")
  vm:wakeup()
  t:assert_eq(vm:is_suspended(), false)
  -- the guest kernel resumed where it stopped: the same shell goes on and
  -- the agent answers again on the same session
  vm:console():expect("RESUMED-MARK", 60, {since = since})
  t:assert_eq(vm:run("echo alive").stdout, "alive\n")
end)

test("wakeup needs a booted vm", function(t)
  vm:shutdown()
  t:assert_eq(vm:is_suspended(), false)
  local e = t:assert_raises(function() vm:wakeup() end)
  t:assert_contains(e, "vm:wakeup: vm `z` is shutdown")
end)
