-- vm:power_button() presses the ACPI button and returns: the guest decides.
-- peios/integration-tests presses it while PID 1 is busy and keeps using
-- the VM; a guest that powers off on it makes the VM shutdown.
local EVIOCGRAB = 0x40044590 -- _IOW('E', 0x90, int)
local SYS_IOCTL = 16

-- the button's /dev/input/eventN, found by its input device name
local function button_device(vm)
  local out = vm:run([[for d in /sys/class/input/event*; do
    [ "$(cat $d/device/name)" = "Power Button" ] && echo /dev/input/${d##*/}
  done; true]]).stdout
  return out:match("%S+")
end

test("a press the guest ignores returns at once; the VM stays usable", function(t)
  local vm = provium:vm("ignores", "linux", {memory = "256M", agent_timeout = 180}):boot()
  -- Keep the press from the agent, which powers the guest off on it: a
  -- file the test holds grabs the button's input device exclusively.
  local dev
  wait_until(function() dev = button_device(vm); return dev end, {timeout = 30, desc = "the power button device"})
  local f = vm:open_file(dev, {read = true})
  t:assert_eq(vm:syscall(SYS_IOCTL, {args = {f:fd(), EVIOCGRAB, 1}}).ret, 0)
  vm:power_button()
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:run("sleep 1; echo still-here").stdout, "still-here\n")
  -- the press did reach the guest: one KEY_POWER input_event
  local ev = f:read(24)
  t:assert_eq(#ev, 24)
  local typ, code, value = string.unpack("<I2I2i4", ev, 17)
  t:assert_eq(typ .. ":" .. code .. ":" .. value, "1:116:1")
  f:close() -- the grab ends with the file
  t:assert_eq(vm:run("echo again").stdout, "again\n")
  t:assert_eq(vm:state(), "booted")
end)

test("a press the default image powers off on makes the VM shutdown", function(t)
  local vm = provium:vm("button", "linux", {memory = "256M", agent_timeout = 180}):boot()
  wait_until(function() return button_device(vm) end, {timeout = 30, desc = "the power button device"})
  vm:run("echo before-the-press > /dev/console"):assert_ok()
  vm:power_button()
  wait_until(function() return vm:state() ~= "booted" end, {timeout = 120, interval = 0.2, desc = "the guest powered off"})
  t:assert_eq(vm:state(), "shutdown")
  local e = t:assert_raises(function() vm:run("true") end)
  t:assert_contains(e, "vm:run: vm `button` is shutdown (needs booted)")
  t:assert_contains(vm:console():read_log(), "before-the-press")
  e = t:assert_raises(function() vm:power_button() end)
  t:assert_contains(e, "vm:power_button: vm `button` is shutdown (needs booted)")
  vm:boot()
  t:assert_eq(vm:run("echo back").stdout, "back\n")
end)
