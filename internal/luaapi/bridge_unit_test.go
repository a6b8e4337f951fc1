package luaapi

import (
	"testing"
)

// The Bridge rule API without guests: argument forms, the spec's error
// texts and the values they set.
func TestBridgeRuleArgumentsWithoutGuests(t *testing.T) {
	L, _, _, _ := newFakeStream(t)
	runLua(t, L, `
		local lan = provium:bridge("lan")
		local other = provium:vm("w", "linux")
		lan:attach({vm, "ghost"})
		local function err(f)
			local ok, e = pcall(f)
			assert(not ok, "no error")
			return tostring(e)
		end
		local function is(got, want) assert(got == want, "got " .. got .. "\nwant " .. want) end

		is(err(function() lan:add_latency({from = vm, ms = 5}) end), "bridge:add_latency: directional form needs `+"`to`"+`")
		is(err(function() lan:drop_rate({to = vm, p = 5}) end), "bridge:drop_rate: directional form needs `+"`from`"+`")
		is(err(function() lan:bandwidth_limit({from = vm, to = "ghost"}) end), "bridge:bandwidth_limit: directional form needs `+"`bps`"+`")
		is(err(function() lan:add_latency("5") end), "bridge:add_latency: expected number or table, got string")
		is(err(function() lan:partition({from = vm, to = other}) end),
			"bridge:partition: vm `+"`w`"+` is not attached to bridge `+"`lan`"+` (attached: [v, ghost]). Call bridge:attach(\"w\") first.")
		is(err(function() lan:drop_rate(101) end), "bridge:drop_rate: drop rate must be a percentage from 0 to 100 (got 101)")
		is(err(function() lan:add_latency(-1) end), "bridge:add_latency: latency must be a finite number of ms >= 0 (got -1)")
		is(err(function() lan:bandwidth_limit(1.5) end), "bridge:bandwidth_limit: bandwidth must be an integer number of bits/s >= 0 (got 1.5)")
		is(err(function() lan:attach(3) end), "bridge expected a VM userdata or string, got number")

		-- Whole-bridge values read back; directional ones leave them alone.
		lan:add_latency(12.5); lan:drop_rate(3); lan:bandwidth_limit(64000)
		lan:add_directional_latency({from = vm, to = "ghost", ms = 200})
		lan:directional_drop_rate({from = "ghost", to = vm, p = 30})
		assert(lan:latency_ms() == 12.5 and lan:drop_rate_pct() == 3 and lan:bandwidth_bps() == 64000)

		-- Symmetric partitions need no attachment; directional ones are one way.
		lan:partition(other, "ghost")
		assert(lan:is_partitioned("w", "ghost") and lan:is_partitioned("ghost", other))
		lan:partition({from = vm, to = "ghost"})
		assert(lan:is_partitioned(vm, "ghost") and not lan:is_partitioned("ghost", vm))
		lan:unpartition({from = vm, to = "ghost"})
		assert(not lan:is_partitioned(vm, "ghost"))
		lan:partition_all()
		assert(lan:is_partitioned("ghost", vm))
		lan:restore_all()
		assert(not lan:is_partitioned("ghost", vm) and not lan:is_partitioned("w", "ghost"))

		lan:isolate(vm)
		assert(lan:is_isolated("v"))
		lan:reset()
		assert(not lan:is_isolated(vm) and lan:latency_ms() == 0 and lan:bandwidth_bps() == 0)
		is(table.concat(lan:members(), ","), "v,ghost")

		-- Addresses and MACs exist before boot; vm:nic finds by bridge name.
		local n = vm:nic("lan")
		assert(n == lan:nic(vm) and n:ip() == "10.64.0.2" and lan:nic("ghost"):ip() == "10.64.0.3", n:ip())
		assert(n:mac() ~= lan:nic("ghost"):mac())
		assert(vm:nic("eth0") == n)
		is(err(function() vm:nic("wlan0") end), "vm:nic: no NIC `+"`wlan0`"+` on vm `+"`v`"+` (try a bridge name like `+"`lan`"+` or a guest iface like `+"`eth0`"+`)")
		is(err(function() n:capture() end), "nic:capture: vm `+"`v`"+` has no TAP on bridge `+"`lan`"+` (not booted?). Call lab:boot() / vm:boot() first.")
		local c = n:counters()
		assert(c.rx_packets == 0 and c.tx_bytes == 0 and c.dropped == 0)

		lan:route("wan"); lan:route({"dmz", "wan"})
		is(table.concat(lan:routes(), ","), "wan,dmz")

		local raw = provium:bridge("raw", {addressing = "none"})
		raw:attach(vm)
		assert(raw:nic(vm):ip() == nil)
		is(err(function() provium:bridge("x", {addressing = "dhcp"}) end), "lab:bridge: opts.addressing `+"`dhcp`"+`: expected \"auto\" or \"none\"")
	`)
}
