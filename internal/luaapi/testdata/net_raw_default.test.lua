-- Profile `plain` is the default image without a guest_os key, as every
-- profile written for upstream Provium is. A bridge made without opts
-- then gives raw links, as upstream's do: the suite's scripted gateways
-- address their own interfaces, and nothing else may be on them.
local lan = provium:bridge("lan")
local gw = provium:vm("gw", "plain", {memory = "256M", agent_timeout = 180})
local sut = provium:vm("sut", "plain", {memory = "256M", agent_timeout = 180})
lan:attach(gw)
lan:attach(sut)
provium:boot()

test("raw links by default: no address, no hosts entry until the test sets one", function(t)
  for _, vm in ipairs({gw, sut}) do
    t:assert_eq(vm:nic("lan"):ip(), nil)
    t:assert_eq(vm:nic("eth0"):ifname(), "eth0")
    local addrs = vm:run("ip -4 addr show dev eth0"):assert_ok().stdout
    t:assert(not addrs:find("inet ", 1, true), vm:name() .. "'s eth0 has an IPv4 address: " .. addrs)
    local hosts = vm:run("cat /etc/hosts 2>/dev/null"):assert_ok().stdout
    t:assert(not hosts:find(".lan", 1, true), vm:name() .. " has a hosts entry for lan: " .. hosts)
  end
  gw:run("ip addr add 10.77.0.1/24 dev eth0 && ip link set eth0 up"):assert_ok()
  sut:run("ip addr add 10.77.0.9/24 dev eth0 && ip link set eth0 up"):assert_ok()
  sut:run("ping -c 2 -W 5 10.77.0.1"):assert_ok()
  gw:run("ping -c 2 -W 5 10.77.0.9"):assert_ok()
end)

-- Without guest_os the default firmware is upstream's SeaBIOS, which
-- announces itself on the serial console before the kernel starts.
test("a profile without guest_os boots through SeaBIOS", function(t)
  local log = gw:console():read_log()
  t:assert(log:find("SeaBIOS", 1, true), "no SeaBIOS banner on the console: " .. log:sub(1, 400))
end)
