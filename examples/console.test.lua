-- The serial console: the boot log, waiting for output, typing into it.
local vm = provium:vm("tty", "linux")
vm:boot()

test("read_log holds what the guest printed on ttyS0", function(t)
  local marker = "console-marker-" .. tostring(os.time())
  vm:run("echo " .. marker .. " > /dev/ttyS0"):assert_ok()
  -- expect waits (polling the log) until the text shows up.
  t:assert_eq(vm:console():expect(marker, 10), marker)
  t:assert_contains(vm:console():read_log(), marker)
end)

test("expect matches output printed before the call", function(t)
  vm:run("echo early-bird > /dev/ttyS0"):assert_ok()
  t:assert_eq(vm:console():expect("early-bird"), "early-bird")
end)

test("expect matches a line as often as it is expected", function(t)
  vm:run("echo tick > /dev/ttyS0"):assert_ok()
  local c = vm:console()
  t:assert_eq(c:expect("tick", 10), "tick")
  t:assert_eq(c:expect("tick", 10), "tick") -- the same line again
  -- expect keeps no state: it searches the current boot's output (after
  -- vm:reset(), only the new boot's). opts.since searches from an offset:
  -- nothing came after the end of the log yet.
  t:assert_raises(function() c:expect("tick", 0, {since = c:log_size()}) end)
end)

test("expect times out with the pattern in the message", function(t)
  local msg = t:assert_raises(function() vm:console():expect("never-printed-text", "300ms") end)
  t:assert_contains(msg, "console:expect timed out waiting for `never-printed-text`")
end)

test("write types into the guest's console", function(t)
  -- Something in the guest must read the console: a background `head`
  -- that copies one line from ttyS0 into a file.
  local pid = vm:run("(exec head -n 1 /dev/ttyS0 > /tmp/typed) </dev/null 2>/dev/null & echo $!")
    :assert_ok().stdout:match("%d+")
  wait_until(function()
    return vm:run("ls -l /proc/" .. pid .. "/fd | grep -q ttyS0"):ok()
  end, { desc = "the reader opened ttyS0", timeout = 10 })
  vm:console():write("typed-by-the-test\n")
  wait_until(function() return vm:stat("/tmp/typed").size > 0 end, { desc = "the line arrived", timeout = 10 })
  t:assert_eq(vm:read_file("/tmp/typed"), "typed-by-the-test\n")
end)
