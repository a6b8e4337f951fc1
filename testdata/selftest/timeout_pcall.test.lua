-- A test timeout cannot be swallowed by pcall; provium.timeout applies
-- to tests without meta.timeout.
provium.timeout = 0.15

test("pcall cannot catch the watchdog", function(t)
  while true do
    pcall(function() while true do end end)
  end
end)
