-- A file below a subdirectory (root-relative path sub/nested.test.lua).
test("nested passes", function(t)
  t:assert_eq(1 + 1, 2)
end)
