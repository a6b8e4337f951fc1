-- A profile whose cmdline asks for console=hvc0 (peios/integration-tests'
-- peinit profile does) still gets /dev/console captured: Provium appends
-- console=ttyS0 after it, the last console= names /dev/console.
local vm = provium:vm("hvc", "hvc", {memory = "256M", agent_timeout = 180}):boot()

test("the cmdline keeps console=hvc0 and ends its consoles with ttyS0", function(t)
  local cmdline = vm:read_file("/proc/cmdline")
  t:assert_contains(cmdline, "console=hvc0")
  local last
  for c in cmdline:gmatch("console=(%S+)") do last = c end
  t:assert_eq(last, "ttyS0")
  -- both are kernel consoles
  local consoles = vm:read_file("/proc/consoles")
  t:assert_contains(consoles, "hvc0")
  t:assert_contains(consoles, "ttyS0")
end)

test("what the guest writes to /dev/console reaches vm:console()", function(t)
  vm:run("echo hvc-profile-says-hello > /dev/console"):assert_ok()
  t:assert_eq(vm:console():expect("hvc-profile-says-hello", 30), "hvc-profile-says-hello")
  t:assert_contains(vm:console():read_log(), "hvc-profile-says-hello")
end)

test("kernel messages reach vm:console()", function(t)
  vm:run("echo '<3>hvc-profile-kmsg' > /dev/kmsg"):assert_ok()
  t:assert_eq(vm:console():expect("hvc-profile-kmsg", 30), "hvc-profile-kmsg")
end)
