-- Malformed Lua: the file cannot load.
test("unbalanced", function(t)
  t:assert(true)
end
