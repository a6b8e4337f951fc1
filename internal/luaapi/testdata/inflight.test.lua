-- An operation in flight when the guest reboots or powers off underneath
-- it fails at once with a clear error (the corpus's services reboot and
-- power off guests while a run is pending); it never waits for a timeout.
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.
local vm = provium:vm("inflight", "linux", {memory = "256M", agent_timeout = 180}):boot()

-- Long enough that waiting it out would be unmistakable, short enough
-- that a hang ends the file instead of the test binary.
local HANG = 600
-- A failure later than this is a hang cut short by something else. It is
-- generous for a loaded TCG host; the time is logged.
local PROMPT = 120

local function raises_promptly(t, what, fn)
  local t0 = os.time()
  local ok, err = pcall(fn)
  local took = os.time() - t0
  t:log(("%s failed after %d s"):format(what, took))
  t:assert(not ok, what .. " returned although the guest went away")
  t:assert(took < PROMPT, ("%s took %d s to fail"):format(what, took))
  return tostring(err)
end

local function boot_id()
  return vm:read_file("/proc/sys/kernel/random/boot_id")
end

-- fn is cut off by a reset of the guest: it fails promptly saying the
-- agent session ended, and the VM stays booted, on a new boot, and answers.
local function cut_off_by_reset(t, what, fn)
  local before = boot_id()
  local e = raises_promptly(t, what, fn)
  t:assert_contains(e, what .. ": ")
  t:assert_contains(e, "the agent session ended")
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:run("echo up").stdout, "up\n")
  t:assert(boot_id() ~= before, "the guest did not boot again")
end

test("vm:run in flight when the guest resets itself (sysrq b)", function(t)
  cut_off_by_reset(t, "vm:run", function()
    vm:run("(sleep 2; echo b > /proc/sysrq-trigger) & sleep " .. HANG)
  end)
end)

test("worker:run in flight when the guest reboots (reboot -f)", function(t)
  local w = vm:spawn_worker()
  cut_off_by_reset(t, "worker:run", function()
    w:run("(sleep 2; reboot -f) & sleep " .. HANG)
  end)
  local e = t:assert_raises(function() w:run("true") end)
  t:assert_contains(e, "stale handle (vm `inflight` was reset)")
end)

test("a blocked worker:syscall when the guest resets", function(t)
  local w = vm:spawn_worker()
  vm:run_async("sleep 2; echo b > /proc/sysrq-trigger")
  cut_off_by_reset(t, "worker:syscall", function()
    w:syscall(34) -- pause(2): returns only on a signal
  end)
end)

test("vm:run and worker:run in flight when the guest powers off", function(t)
  local e = raises_promptly(t, "vm:run", function()
    vm:run("(sleep 2; poweroff -f) & sleep " .. HANG)
  end)
  t:assert_contains(e, "vm:run")
  wait_until(function() return vm:state() ~= "booted" end, {timeout = 30})
  t:assert_eq(vm:state(), "shutdown")
  vm:boot()
  local w = vm:spawn_worker()
  e = raises_promptly(t, "worker:run", function()
    w:run("(sleep 2; poweroff -f) & sleep " .. HANG)
  end)
  t:assert_contains(e, "worker:run")
  wait_until(function() return vm:state() ~= "booted" end, {timeout = 30})
  t:assert_eq(vm:state(), "shutdown")
end)
