-- Impairments on real guests: directional partition (with captures),
-- latency, loss and bandwidth. Captures land in $PROVIUM_TEST_PCAP_DIR for
-- the Go side to parse with gopacket.
local lan = provium:bridge("lan")
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
local b = provium:vm("b", "linux", {memory = "256M", agent_timeout = 180})
lan:attach({a, b})
provium:boot()

local function save(name, cap)
  local dir = assert(os.getenv("PROVIUM_TEST_PCAP_DIR"), "PROVIUM_TEST_PCAP_DIR")
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  for _, chunk in ipairs(cap:drain(1)) do f:write(chunk) end
  f:close()
  cap:close()
end

-- min RTT in ms of n pings (the minimum is robust against a loaded host).
local function min_rtt(from, to, n)
  local r = from:run(string.format("ping -c %d -i 0.2 -W 3 -q %s", n, to))
  r:assert_ok()
  local min = r.stdout:match("min/avg/max = ([%d.]+)/")
  return assert(tonumber(min), r.stdout)
end

test("directional partition drops a->b only (seen in captures)", function()
  a:run("ping -c 1 -W 2 b.lan"):assert_ok() -- ARP settled both ways
  local ca, cb = a:nic("lan"):capture(), b:nic("lan"):capture()
  local whole = lan:capture()
  lan:partition({from = a, to = b})
  assert(lan:is_partitioned(a, b) and not lan:is_partitioned(b, a))
  -- b's echo requests reach a; a's replies are dropped.
  assert(not b:run("ping -c 3 -W 1 a.lan"):ok(), "b got replies through a->b partition")
  assert(not a:run("ping -c 2 -W 1 b.lan"):ok(), "a reached b through a->b partition")
  save("dir_a.pcap", ca)
  save("dir_b.pcap", cb)
  save("dir_bridge.pcap", whole)
  lan:unpartition({from = a, to = b})
  a:run("ping -c 1 -W 2 b.lan"):assert_ok()
end)

test("latency: whole bridge both ways, directional one way", function()
  local base = min_rtt(a, "b.lan", 5)
  lan:add_latency(200)
  assert(lan:latency_ms() == 200)
  local whole = min_rtt(a, "b.lan", 5) - base
  lan:add_latency(0)
  lan:add_directional_latency({from = a, to = b, ms = 200})
  local dir = min_rtt(a, "b.lan", 5) - base
  lan:reset()
  assert(math.abs(whole - 400) <= 80, string.format("whole-bridge 200 ms added %.1f ms to the RTT (want 400 ± 80)", whole))
  assert(math.abs(dir - 200) <= 40, string.format("directional 200 ms added %.1f ms to the RTT (want 200 ± 40)", dir))
end)

local function loss_pct()
  local r = a:run("ping -c 1000 -i 0.01 -W 2 -q b.lan")
  local sent, recv = r.stdout:match("(%d+) packets transmitted, (%d+) packets received")
  assert(sent == "1000", r.stdout)
  return (1000 - tonumber(recv)) / 10
end

test("drop_rate 30 loses 30% of 1000 frames (directional, seeded)", function()
  a:run("ping -c 1 -W 2 b.lan"):assert_ok()
  lan:directional_drop_rate({from = a, to = b, p = 30})
  local first = loss_pct()
  lan:directional_drop_rate({from = a, to = b, p = 30})
  local second = loss_pct()
  lan:reset()
  for _, l in ipairs({first, second}) do
    assert(math.abs(l - 30) <= 8, string.format("lost %.1f%% (want 30 ± 8)", l))
  end
end)

-- The host's clock (a TCG guest's clock can jump on a loaded host).
local function host_now()
  local f = assert(io.popen("date +%s.%N"))
  local v = f:read("n")
  f:close()
  return assert(v)
end

test("bandwidth_limit 8 Mbit/s holds TCP at 1 MB/s", function()
  lan:bandwidth_limit(8000000)
  assert(lan:bandwidth_bps() == 8000000)
  -- 16 MiB over TCP; the rate is measured at b's port between 2 MB and
  -- 12 MB delivered, past slow start and before the tail, so connection
  -- setup and a loaded host's scheduling do not enter it.
  local bytes = 64 * 1024 * 256
  local nb = b:nic("lan")
  local function rx() return nb:counters().rx_bytes end
  local p = b:run_async("nc -l -p 5000 | wc -c")
  b:run("sleep 0.5")
  local base = rx()
  local s = a:run_async("dd if=/dev/zero bs=64k count=256 2>/dev/null | nc b.lan 5000")
  wait_until(function() return rx() - base >= 2e6 end, {timeout = 120, interval = 0.05})
  local c0, t0 = rx(), host_now()
  wait_until(function() return rx() - base >= 12e6 end, {timeout = 120, interval = 0.05})
  local c1, t1 = rx(), host_now()
  s:wait(120):assert_ok()
  local res = p:wait(120)
  lan:bandwidth_limit(0)
  assert(tonumber(res.stdout) == bytes, res.stdout)
  local rate = (c1 - c0) / (t1 - t0)
  assert(math.abs(rate - 1e6) <= 0.15e6, string.format("b received %.0f B/s of frames (want 1e6 ± 15%%)", rate))
end)
