-- test() with a bad shape is an error at the top level: a chunk error.
test("fine", function(t) end)
test(42)
