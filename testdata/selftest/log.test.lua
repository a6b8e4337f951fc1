-- t:log entries travel with the outcome.
test("log on a passing test", function(t)
  t:log("hello")
  t:log(42)
  t:log(true)
end)

test("log on a failing test", function(t)
  t:log("step 1")
  t:log("two\nlines")
  t:fail("after logging") --@log_fail
end)
