-- A test timeout tears the file lab down; reset_between_tests restores it,
-- so the next test still runs against the baseline.
provium.reset_between_tests = true
local vm = provium:vm("rt", "linux", {memory = "256M"}):boot()
vm:write_file("/tmp/base", "b")

test("times out", {timeout = "1s"}, function(t)
  vm:unlink("/tmp/base")
  while true do end
end)

test("runs on the restored baseline", function(t)
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:read_file("/tmp/base"), "b")
end)
