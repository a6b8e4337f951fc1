-- meta.timeout on an infinite loop: the test fails, the file lab is torn
-- down, the later tests fail because of it (30-runtime.md B7).
test("before the loop", function(t) end)

test("spins forever", { timeout = "200ms" }, function(t)
  while true do end
end)

test("after the loop", function(t) end)
