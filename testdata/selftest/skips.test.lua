-- Every meta skip form and t:skip (20-cli-config.md §3.3). Skipped bodies
-- must not run: they fail if they do.

local function must_not_run(t) t:fail("body ran") end

test("skip = true", { skip = true }, must_not_run)
test("skip = 1", { skip = 1 }, must_not_run)
test("skip = 0 runs", { skip = 0 }, function(t) end)
test("skip = false runs", { skip = false }, function(t) end)
test("skip = reason", { skip = "flaky on CI" }, must_not_run)
test("slow = true", { slow = true }, function(t) t:log("slow body ran") end)
test("slow = 1", { slow = 1 }, function(t) end)
test("skip beats slow", { skip = true, slow = true }, must_not_run)

test("t:skip with a reason", function(t)
  t:skip("not today")
  t:fail("after skip")
end)

test("t:skip without a reason", function(t)
  t:skip()
end)
