-- Raw links (addressing = "none"), as suites that run their own network
-- stack use them: a guest's own address, default route and hosts file stay
-- as the guest set them while other members boot, leave and join.
local raw = provium:bridge("raw", {addressing = "none"})
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
local b = provium:vm("b", "linux", {memory = "256M", agent_timeout = 180})
raw:attach({a, b})

local HOSTS = "# written by the guest\n\n192.168.66.1 gw.test gw\n\n192.168.66.2 a.test"

local function unchanged(t, when)
  local r = a:run("ip -4 route show default")
  r:assert_ok()
  t:assert_contains(r.stdout, "default via 192.168.66.1", "a's default route " .. when)
  t:assert_eq(a:read_file("/etc/hosts"), HOSTS, "a's hosts file " .. when)
  t:assert(not a:run("test -e /etc/nsswitch.conf"):ok(), "/etc/nsswitch.conf created " .. when)
end

test("another member booting, leaving and joining changes nothing in a", function(t)
  a:boot()
  t:assert(not a:run("test -e /etc/nsswitch.conf"):ok(), "the image has no nsswitch.conf")
  local ifa = assert(a:nic("raw"):ifname())
  a:run("ip addr add 192.168.66.2/24 dev " .. ifa .. " && ip link set " .. ifa .. " up"
    .. " && ip route add default via 192.168.66.1"):assert_ok()
  a:write_file("/etc/hosts", HOSTS)
  unchanged(t, "before b boots")
  b:boot()
  unchanged(t, "after b booted")
  local r = b:run("ip -4 route show default; cat /etc/hosts; test -e /etc/nsswitch.conf && echo NSSWITCH")
  t:assert_eq(r.stdout:find("NSSWITCH", 1, true), nil, "b got an nsswitch.conf")
  t:assert_eq(r.stdout:find("provium network", 1, true), nil, "b got a hosts block")
  raw:detach(b)
  unchanged(t, "after b left")
  raw:attach(b)
  t:assert(b:nic("raw"):ifname() ~= nil, "b's hot-plugged NIC has a name")
  unchanged(t, "after b joined again")
end)
