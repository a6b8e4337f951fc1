-- Profile `plain` is the default image without a guest_os key, as every
-- profile written for upstream Provium is. Upstream runs QEMU with
-- -no-reboot, and the suite depends on it: a guest that reboots itself
-- never answers again (eventd's "Critical" test loops on pcall(run)
-- until a call fails). Profile `linux` names guest_os and keeps ours: the
-- guest boots again and the VM stays booted.

local function rebooted_down(t, vm)
  wait_until(function() return vm:state() ~= "booted" end, {timeout = 60, desc = "the VM leaves booted"})
  t:assert_eq(vm:state(), "shutdown")
  local e = t:assert_raises(function() vm:run("true") end)
  t:assert_contains(e, "vm:run: vm `" .. vm:name() .. "` is shutdown (needs booted)")
  t:assert_contains(e, "the guest rebooted itself")
end

test("a guest that reboots itself is shut down, the call in flight raises", function(t)
  local vm = provium:vm("rb", "plain", {memory = "256M", agent_timeout = 180}):boot()
  vm:run("echo before-the-reboot > /dev/console")
  local e = t:assert_raises(function() vm:run("reboot -f") end)
  t:assert_contains(e, "vm:run: the agent session ended")
  rebooted_down(t, vm)
  -- the console of the machine that ended stays readable
  t:assert_contains(vm:console():read_log(), "before-the-reboot")
  -- and the VM boots again
  vm:boot()
  t:assert_eq(vm:run("echo again").stdout, "again\n")
end)

test("sysrq b while the test polls: every later run raises, as the suite's loop expects", function(t)
  local vm = provium:vm("sq", "plain", {memory = "256M", agent_timeout = 180}):boot()
  vm:run_async("sleep 2; echo b > /proc/sysrq-trigger")
  local down = false
  for _ = 1, 90 do
    local ok, r = pcall(vm.run, vm, "true", {timeout = 5})
    if not ok or not r:ok() then down = true break end
    pcall(vm.run, vm, "sleep 1", {timeout = 5})
  end
  t:assert(down, "the VM kept answering after sysrq b")
  rebooted_down(t, vm)
end)

test("vm:reset() keeps the VM; the new boot's own reboot still shuts it down", function(t)
  local vm = provium:vm("rs", "plain", {memory = "256M", agent_timeout = 180}):boot()
  vm:write_file("/tmp/before-reset", "x")
  vm:reset()
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:run("echo up").stdout, "up\n")
  t:assert_eq(vm:run("test -e /tmp/before-reset"):ok(), false)
  vm:reset()
  t:assert_eq(vm:run("echo up again").stdout, "up again\n")
  pcall(vm.run, vm, "reboot -f")
  rebooted_down(t, vm)
end)

test("a restored VM keeps its profile's rule", function(t)
  local plain = provium:vm("sp", "plain", {memory = "256M", agent_timeout = 180}):boot()
  local snap = plain:snapshot()
  plain:shutdown()
  plain:restore(snap)
  t:assert_eq(plain:run("echo restored").stdout, "restored\n")
  pcall(plain.run, plain, "reboot -f")
  rebooted_down(t, plain)

  local ours = provium:vm("sl", "linux", {memory = "256M", agent_timeout = 180}):boot()
  local snap2 = ours:snapshot()
  ours:shutdown()
  ours:restore(snap2)
  local e = t:assert_raises(function() ours:run("reboot -f") end)
  t:assert_contains(e, "vm:run: the agent session ended")
  t:assert_eq(ours:state(), "booted")
  t:assert_eq(ours:run("echo up").stdout, "up\n")
end)
