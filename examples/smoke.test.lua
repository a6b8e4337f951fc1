-- The smallest useful Provium test file: boot one guest, run a command.
--
-- The VM is created and booted at file top level, so it boots once and is
-- shared by every test below; it is shut down when the file ends.
local vm = provium:vm("smoke", "linux")
vm:boot()

test("the guest is booted", function(t)
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:name(), "smoke")
  t:assert_eq(vm:profile(), "linux")
end)

test("uname reports Linux", function(t)
  local r = vm:run("uname -s")
  r:assert_ok()
  t:assert_eq(r.stdout, "Linux\n")
  t:assert_eq(r.stderr, "")
  t:assert_eq(r.exit_code, 0)
  t:assert_eq(r.status, "exited")
end)

test("the hostname is the VM name", function(t)
  t:assert_eq(vm:run("hostname").stdout, "smoke\n")
end)

test("a VM created inside a test is torn down with it", function(t)
  -- Created in the test scope: shut down when this test ends.
  local extra = provium:vm("extra", "linux")
  t:assert_eq(extra:state(), "created")
  extra:boot()
  t:assert_eq(extra:run("hostname").stdout, "extra\n")
end)

test("... and is gone afterwards", function(t)
  local msg = t:assert_raises(function() provium:vm("extra") end)
  t:assert_contains(msg, "no vm named `extra`")
end)
