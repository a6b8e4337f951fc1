-- The sticky failure flag: the first recorded message wins, pcall cannot
-- hide a failed assertion, assert_raises restores the flag it found.

test("failure inside pcall still fails", function(t)
  pcall(function() t:assert_eq(1, 2, "first") end)
  pcall(function() t:assert(false, "second") end)
end)

test("assert_raises restores a clean flag", function(t)
  local err = t:assert_raises(function() t:assert(false, "expected inside") end)
  t:assert_contains(err, "expected inside")
end)

test("assert_raises keeps an earlier failure", function(t)
  pcall(function() t:fail("earlier") end)
  t:assert_raises(function() t:assert(false, "inner") end)
end)

test("skip after a failure stays failed", function(t)
  pcall(function() t:fail("before skip") end)
  t:skip("too late")
end)

test("pcall of a plain error does not fail", function(t)
  local ok = pcall(error, "swallowed")
  t:assert(not ok)
end)
