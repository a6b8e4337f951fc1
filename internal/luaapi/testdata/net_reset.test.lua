-- Bridge state is part of the baseline that reset_between_tests restores.
provium.reset_between_tests = true
local lan = provium:bridge("lan")
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
local b = provium:vm("b", "linux", {memory = "256M", agent_timeout = 180})
lan:attach({a, b})
provium:boot()
lan:add_latency(5)

test("break the network", function()
  a:run("ping -c 3 -i 0.3 -W 5 b.lan"):assert_ok()
  lan:partition(a, b)
  lan:add_latency(50)
  lan:isolate(b)
  assert(not a:run("ping -c 1 -W 1 b.lan"):ok())
end)

test("the restored baseline pings by name with its rules", function()
  assert(not lan:is_partitioned(a, b), "partition survived the restore")
  assert(not lan:is_isolated(b), "isolation survived the restore")
  assert(lan:latency_ms() == 5, "latency " .. lan:latency_ms())
  a:run("ping -c 3 -i 0.3 -W 5 b.lan"):assert_ok()
  b:run("ping -c 3 -i 0.3 -W 5 a.lan"):assert_ok()
end)
