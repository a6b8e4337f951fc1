-- Tests for the --tag / --no-tag / --tag-meta / --no-tag-meta filters.
test("net test", { tags = { "net", "smoke" } }, function(t) end)
test("dns test", { tags = "dns" }, function(t) end)
test("untagged", function(t) end)
test("meta subsystems", { subsystems = { "fs", "net" }, owner = "alice" }, function(t) end)
test("meta flaky bool", { flaky = true }, function(t) end)
test("meta flaky string", { flaky = "true" }, function(t) end)
