-- wait_until (10-lua-api.md §2.3).

test("wait_until returns the first truthy result", function(t)
  local n = 0
  local v = wait_until(function()
    n = n + 1
    if n >= 3 then return "ready" end
    return false
  end, { interval = 0.01 })
  t:assert_eq(v, "ready")
  t:assert_eq(n, 3)
end)

test("wait_until calls the predicate at least once", function(t)
  local n = 0
  wait_until(function() n = n + 1; return true end, { timeout = 0 })
  t:assert_eq(n, 1)
end)

test("wait_until timeout with desc", function(t)
  wait_until(function() return false end, { timeout = "50ms", interval = "10ms", desc = "the flag" })
end)

test("wait_until timeout default desc", function(t)
  wait_until(function() return nil end, { timeout = 0.05, interval = 0.01 })
end)

test("wait_until predicate error propagates", function(t)
  local calls = 0
  wait_until(function()
    calls = calls + 1
    error("predicate broke") --@pred_error
  end, { timeout = 5 })
end)

test("wait_until bad timeout string", function(t)
  wait_until(function() return true end, { timeout = "soon" })
end)
