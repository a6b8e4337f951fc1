-- require() of helpers through the effective roots.
local util = require("helpers.util")
local pkg = require("helpers")

test("helper module", function(t)
  t:assert_eq(util.double(21), 42)
end)

test("init module", function(t)
  t:assert_eq(pkg.name, "helpers")
end)

test("missing module", function(t)
  local err = t:assert_raises(function() require("helpers.absent") end)
  t:assert_contains(tostring(err), "module 'helpers.absent' not found")
end)
