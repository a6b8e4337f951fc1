test("same", function(t) end)
test("same", function(t) end)
