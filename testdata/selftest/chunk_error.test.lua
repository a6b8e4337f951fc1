-- A top-level error is a chunk error; the other files still run.
test("registered before the error", function(t) end)

error("top level broke") --@chunk
