-- Snapshots of a VM whose NIC was hot-plugged after boot: vm:snapshot, lab
-- snapshots and reset_between_tests put the card back where the guest had
-- it, and the guest keeps its address and name.
provium.reset_between_tests = true
local root = provium
local lan = provium:bridge("lan")
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
-- b's disk takes the first root port at boot, so the hot-plugged card sits
-- behind it: a restore laying cards out before disks would swap them.
local b = provium:vm("b", "linux", {memory = "256M", agent_timeout = 180, disks = {{id = "d", scratch = "1M"}}})
lan:attach(a)
provium:boot()
lan:attach(b) -- hot-plugged: b booted without a NIC
b:write_file("/tmp/mark", "baseline")

local function both_ping()
  a:run("ping -c 3 -i 0.3 -W 5 b.lan"):assert_ok()
  b:run("ping -c 3 -i 0.3 -W 5 a.lan"):assert_ok()
end

local function has_address(t, vm)
  local nic = vm:nic("lan")
  local out = vm:run("ip -4 addr show dev " .. nic:ifname()).stdout
  t:assert_contains(out, "inet " .. nic:ip() .. "/")
end

test("vm:snapshot of a hot-attached VM restores its card, address and name", function(t)
  both_ping()
  local ip = b:nic("lan"):ip()
  local snap = b:snapshot()
  b:write_file("/tmp/mark", "after")
  b:shutdown()
  b:restore(snap)
  t:assert_eq(b:read_file("/tmp/mark"), "baseline")
  t:assert_eq(b:nic("lan"):ip(), ip)
  has_address(t, b)
  t:assert_eq(b:read_file("/sys/block/vda/serial"), "d")
  both_ping()
end)

test("a lab snapshot carries the hot-attached VM", function(t)
  local s = root:snapshot()
  lan:detach(b)
  t:assert(not a:run("ping -c 1 -W 1 b.lan"):ok(), "b.lan answers after the detach")
  b:write_file("/tmp/mark", "changed")
  root:restore(s)
  t:assert_eq(b:read_file("/tmp/mark"), "baseline")
  t:assert_eq(#lan:members(), 2)
  has_address(t, b)
  both_ping()
  -- undone by reset_between_tests
  lan:partition(a, b)
  b:write_file("/tmp/mark", "dirty")
end)

test("reset_between_tests brings the hot-attached baseline back", function(t)
  t:assert_eq(b:read_file("/tmp/mark"), "baseline")
  t:assert(not lan:is_partitioned(a, b), "the partition survived the reset")
  has_address(t, b)
  both_ping()
end)
