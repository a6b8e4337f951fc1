-- Two guests on a virtual L2 network (a switch inside Provium: no root, no
-- host interfaces). Each member gets a MAC and an address on the bridge's
-- subnet, and `<vm>.<bridge>` resolves in every member.
local lan = provium:bridge("lan")
local a = provium:vm("a", "linux", {memory = "256M"})
local b = provium:vm("b", "linux", {memory = "256M"})
lan:attach({a, b})
provium:boot()

local function ping(from, to)
  return from:run("ping -c 3 -i 0.3 -W 5 " .. to)
end

test("members reach each other by name", function(t)
  ping(a, "b.lan"):assert_ok()
  ping(b, "a.lan"):assert_ok()
  t:assert_eq(a:nic("lan"):ip(), lan:nic(a):ip())
  -- Boot-time NICs sit where upstream Provium puts them: the first at PCI
  -- 0000:00:02.0, the next at 00:03.0, in attach order.
  local dev = a:run("readlink -f /sys/class/net/eth0/device").stdout
  t:assert(dev:find("/0000:00:02.0/", 1, true), "eth0's PCI function: " .. dev)
end)

test("a partition cuts them apart, unpartition heals", function(t)
  lan:partition(a, b)
  t:assert(not ping(a, "b.lan"):ok(), "a reached b through a partition")
  lan:unpartition(a, b)
  ping(a, "b.lan"):assert_ok()
end)

test("latency shows in the round trip", function(t)
  lan:add_latency(100) -- one way, each direction: +200 ms per round trip
  local r = a:run("ping -c 3 -i 0.2 -q b.lan")
  lan:add_latency(0)
  r:assert_ok()
  local min = tonumber(r.stdout:match("min/avg/max = ([%d.]+)/"))
  t:assert(min >= 200, "round trip " .. tostring(min) .. " ms")
end)

test("a capture holds the pings in pcap format", function(t)
  local cap = lan:capture()
  ping(a, "b.lan"):assert_ok()
  local pcap = table.concat(cap:drain(1))
  cap:close()
  -- The pcap file header: magic a1b2c3d4 (little endian), link type 1.
  t:assert_eq(string.unpack("<I4", pcap), 0xa1b2c3d4)
  t:assert_eq(string.unpack("<I4", pcap, 21), 1)
  t:assert(#pcap >= 24 + 2 * (16 + 98), "an echo request and reply captured (" .. #pcap .. " bytes)")
end)

test("NICs attached after boot survive a snapshot and restore", function(t)
  local wan = provium:bridge("wan")
  wan:attach({a, b}) -- hot-plugged into the running guests
  ping(a, "b.wan"):assert_ok()
  local snap = b:snapshot()
  b:shutdown()
  b:restore(snap) -- both of b's cards come back where the guest had them
  ping(a, "b.wan"):assert_ok()
  ping(a, "b.lan"):assert_ok()
end)
