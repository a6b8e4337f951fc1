-- Suspend to RAM (S3) and vm:wakeup against one booted guest.
-- Known gap: after system_wakeup the firmware restarts the directly booted
-- kernel instead of jumping to its resume vector (qboot has no S3 path;
-- SeaBIOS boots the -kernel option ROM again), so this checks the host
-- side: suspend detection, the QMP wakeup and the error texts.
local vm = provium:vm("z", "linux", {memory = "256M"})
vm:boot()

test("wakeup of a running guest is an error", function(t)
  t:assert_eq(vm:is_suspended(), false)
  local e = t:assert_raises(function() vm:wakeup() end)
  t:assert_contains(e, "vm:wakeup: vm `z` is not suspended")
end)

test("suspend, is_suspended, wakeup", {timeout = 60}, function(t)
  t:assert_eq(vm:run("cat /sys/power/state").stdout:find("mem", 1, true) ~= nil, true)
  vm:run("(sleep 0.3; echo mem > /sys/power/state) >/dev/null 2>&1 &"):assert_ok()
  wait_until(function() return vm:is_suspended() end, {timeout = 20, desc = "guest suspended"})
  t:assert_eq(vm:state(), "booted")
  vm:wakeup()
  t:assert_eq(vm:is_suspended(), false)
end)

test("wakeup needs a booted vm", function(t)
  vm:shutdown()
  t:assert_eq(vm:is_suspended(), false)
  local e = t:assert_raises(function() vm:wakeup() end)
  t:assert_contains(e, "vm:wakeup: vm `z` is shutdown")
end)
