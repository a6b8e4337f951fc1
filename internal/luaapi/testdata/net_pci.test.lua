-- Where a bridge NIC sits on the guest's PCI bus. Real suites read the
-- card's bus path (the PCI function above the virtio device) and derive
-- interface ids from it, so boot-time NICs are where upstream Provium puts
-- them: the first on the root bus at 0000:00:02.0, the next at 00:03.0, in
-- attach order.
local lan = provium:bridge("lan")
local wan = provium:bridge("wan")
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
local b = provium:vm("b", "linux", {memory = "256M", agent_timeout = 180})
lan:attach({a, b})
wan:attach(a)
provium:boot()

-- The PCI function a link's device hangs from (the device itself is the
-- virtio device, one level below).
local function pci_function(vm, ifname)
  local r = vm:run("readlink -f /sys/class/net/" .. ifname .. "/device")
  r:assert_ok()
  local dev = r.stdout:match("[^\n]+")
  return dev:match("([^/]+)/[^/]+$"), dev
end

test("the first bridge NIC is 0000:00:02.0 on the root bus, the second 0000:00:03.0", function(t)
  local lan_if, wan_if = a:nic("lan"):ifname(), a:nic("wan"):ifname()
  t:assert_eq(lan_if, "eth0", "the first attached NIC is eth0")
  t:assert_eq(wan_if, "eth1", "the second attached NIC is eth1")
  local parent, dev = pci_function(a, "eth0")
  t:log("eth0's device: " .. dev)
  t:assert(not dev:match("/%x%x%x%x:%x%x:%x%x%.%x$"), "the device itself is not the PCI function: " .. dev)
  t:assert_eq(parent, "0000:00:02.0", "eth0's PCI function")
  t:assert(dev:find("^/sys/devices/pci0000:00/0000:00:02.0/"), "eth0 sits on the root bus: " .. dev)
  t:assert_eq((pci_function(a, "eth1")), "0000:00:03.0", "eth1's PCI function")
  t:assert_eq((pci_function(b, "eth0")), "0000:00:02.0", "b's only NIC")
  t:assert_eq(a:run("basename $(readlink /sys/class/net/eth0/device/driver)").stdout, "virtio_net\n")
  a:run("ping -c 3 -i 0.3 -W 5 b.lan"):assert_ok()
end)

test("a snapshot and restore keep the layout, and names still resolve", function(t)
  local snap = a:snapshot()
  a:shutdown()
  a:restore(snap)
  t:assert_eq((pci_function(a, "eth0")), "0000:00:02.0", "eth0 after the restore")
  t:assert_eq((pci_function(a, "eth1")), "0000:00:03.0", "eth1 after the restore")
  wait_until(function() return a:run("ping -c 3 -i 0.3 -W 5 b.lan"):ok() end,
    {timeout = 30, interval = 0.5, desc = "a to reach b.lan after the restore"})
  b:run("ping -c 3 -i 0.3 -W 5 a.lan"):assert_ok()
  snap:delete()
end)
