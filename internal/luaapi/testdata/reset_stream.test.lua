provium.reset_between_tests = true
local vm = provium:vm("s", "linux", {memory = "256M"}):boot()
vm:write_file("/tmp/log", "x")
local tail = vm:tail_file("/tmp/log")
test("one", function() end)
test("two", function() end)
