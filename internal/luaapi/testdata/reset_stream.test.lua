provium.reset_between_tests = true
local vm = provium:vm("s", "linux", {memory = "256M", agent_timeout = 180}):boot()
vm:write_file("/tmp/log", "x")
local tail = vm:tail_file("/tmp/log")
-- One test is enough: the refusal does not depend on a restore ever running.
test("one", function() end)
