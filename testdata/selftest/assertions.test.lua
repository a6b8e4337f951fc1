-- Every assertion of the t context (10-lua-api.md §2.4), passing and failing.
-- Lines marked --@<id> raise; the Go tests locate them by marker.

test("assert passes", function(t)
  t:assert(true)
  t:assert(1, "a number is truthy")
  t:assert("", "an empty string is truthy")
end)

test("assert fails by default message", function(t)
  t:assert(false) --@assert_default
end)

test("assert fails with a message", function(t)
  t:assert(nil, "custom message") --@assert_msg
end)

test("assert_eq passes", function(t)
  t:assert_eq(1, 1)
  t:assert_eq("a", "a", "strings")
  t:assert_eq(nil, nil)
end)

test("assert_eq fails by default message", function(t)
  t:assert_eq(1, 2) --@eq_default
end)

test("assert_eq fails with a message", function(t)
  t:assert_eq("x", "y", "names differ") --@eq_msg
end)

test("assert_neq passes", function(t)
  t:assert_neq(1, 2)
  t:assert_neq("a", nil)
end)

test("assert_neq fails by default message", function(t)
  t:assert_neq(3, 3) --@neq_default
end)

test("assert_neq fails with a message", function(t)
  t:assert_neq("a", "a", "same") --@neq_msg
end)

test("assert_contains passes", function(t)
  t:assert_contains("hello world", "o w")
  t:assert_contains("a.b", ".", "plain find, not a pattern")
  t:assert_contains("a+b", "+")
end)

test("assert_contains fails by default message", function(t)
  t:assert_contains("hello", "xyz") --@contains_default
end)

test("assert_contains fails with a message", function(t)
  t:assert_contains("abc", "d", "missing") --@contains_msg
end)

test("assert_contains cuts the haystack to 4 KiB", function(t)
  t:assert_contains(string.rep("a", 5000), "b") --@contains_cut
end)

test("assert_contains rejects non-strings", function(t)
  t:assert_contains(42, "4") --@contains_type
end)

test("assert_raises passes and returns the error", function(t)
  local err = t:assert_raises(function() error("inner", 0) end)
  t:assert_eq(err, "inner")
  local tbl = t:assert_raises(function() error({ code = 7 }) end)
  t:assert_eq(tbl.code, 7)
end)

test("assert_raises fails by default message", function(t)
  t:assert_raises(function() end) --@raises_default
end)

test("assert_raises fails with a message", function(t)
  t:assert_raises(function() return 1 end, "should raise") --@raises_msg
end)

test("fail by default message", function(t)
  t:fail() --@fail_default
end)

test("fail with a message", function(t)
  t:fail("went wrong") --@fail_msg
end)

test("error raised by the body", function(t)
  error("plain error") --@plain_error
end)

test("error without position", function(t)
  error("bare message", 0)
end)

test("context fields", function(t)
  t:assert_eq(t.name, "context fields")
  t:assert_eq(type(t.meta), "table")
  t:assert_eq(next(t.meta), nil)
end)

test("context meta", { owner = "me", tags = { "x" } }, function(t)
  t:assert_eq(t.meta.owner, "me")
  t:assert_eq(t.meta.tags[1], "x")
end)
