-- Semantics real suites (peios/integration-tests) depend on. console():expect
-- consumes what it matched (per pattern) and never looks before the current
-- boot, so a boot marker is waited for again after vm:reset() (as peios/integration-tests' power-loss tests
-- do: "expect consumed the first boot's").
-- A bare `mem` is a malformed early option: the kernel warns once per boot,
-- and loglevel=5 puts warnings (only a few lines) on the console.
local MARK = "Malformed early option 'mem'"
local vm = provium:vm("cr", "linux", {memory = "256M", kernel_cmdline_append = "loglevel=5 mem"})

local function count(s, pat)
  local n, at = 0, 1
  while true do
    local i = s:find(pat, at, true)
    if not i then return n end
    n, at = n + 1, i + #pat
  end
end

test("expect after reset waits for the new boot's marker", function(t)
  vm:boot()
  local c = vm:console()
  t:assert_eq(c:expect(MARK, 30), MARK)
  -- consumed: the same boot's marker does not match twice
  local e = t:assert_raises(function() c:expect(MARK, "300ms") end)
  t:assert_contains(e, "console:expect timed out waiting for `" .. MARK .. "`")
  -- `since` searches from an offset and consumes nothing
  t:assert_eq(c:expect(MARK, 0, {since = 0}), MARK)
  vm:run("echo first-boot-only > /dev/console")
  vm:reset()
  t:assert_eq(vm:console():expect(MARK, 60), MARK)
  t:assert_eq(count(c:read_log(), MARK), 2)
  -- no expect looks before the reset, even for a pattern never expected
  t:assert_raises(function() c:expect("first-boot-only", 0) end)
  t:assert_eq(c:expect("first-boot-only", 0, {since = 0}), "first-boot-only")
  e = t:assert_raises(function() c:expect(MARK, 0) end)
  t:assert_contains(e, "timed out")
end)

test("echoed markers are matched once each, in order", function(t)
  local c = vm:console()
  vm:run("echo mark-a > /dev/console; echo mark-b > /dev/console; echo mark-a > /dev/console")
  t:assert_eq(c:expect("mark-a", 10), "mark-a")
  t:assert_eq(c:expect("mark-b", 10), "mark-b")
  t:assert_eq(c:expect("mark-a", 10), "mark-a") -- the second one
  t:assert_raises(function() c:expect("mark-b", 0) end)
end)

test("marks of one boot match in any order once a later one was expected", function(t)
  -- As the corpus's stage tests: wait for the stage mark, then for
  -- service start lines printed before it, in an order that can vary.
  local c = vm:console()
  vm:run("for m in stage-early svc-b-started svc-a-started stage-done; do echo $m > /dev/console; done")
  t:assert_eq(c:expect("stage-done", 10), "stage-done")
  t:assert_eq(c:expect("svc-a-started", 10), "svc-a-started")
  t:assert_eq(c:expect("svc-b-started", 10), "svc-b-started")
  t:assert_eq(c:expect("stage-early", 10), "stage-early")
  -- each pattern's own match is consumed
  t:assert_raises(function() c:expect("svc-b-started", 0) end)
  vm:run("echo svc-b-started > /dev/console")
  t:assert_eq(c:expect("svc-b-started", 10), "svc-b-started")
end)

test("kill on a process that has just exited, then wait", function(t)
  -- as the corpus stops a stream that may have ended: kill, then wait
  local s = vm:run_async("echo done")
  wait_until(function() return s:status() ~= "running" end, {timeout = 10, interval = 0.05})
  s:kill("kill")
  s:signal("term")
  local r = s:wait("5s")
  t:assert_eq(r.exit_code, 0)
  t:assert_eq(r.stdout, "done\n")
  -- once waited, the process is known gone: the spec's error
  local e = t:assert_raises(function() s:kill("kill") end)
  t:assert_contains(e, "proc: process " .. s:handle() .. " has exited")
end)
