package vmm

import (
	"fmt"
	"slices"
)

// PCILayout versions the PCI layout of the pc and q35 machines. Every PCI
// device gets an explicit root-bus slot, for two reasons: the guest sees
// the layout upstream Provium gives it (its first NIC is 0000:00:02.0,
// the bus path that real suites assert and derive interface ids from), and
// a restore builds exactly the machine whose device state it loads.
//
// q35 (00:00 is the host bridge, 00:1f the ICH9 functions):
//
//	00:01.0       virtio-serial (the agent's port, where upstream has its vsock)
//	00:02.0 …     the boot-time NICs, in attach order
//	next          virtio-rng
//	next …        one PCIe root port per slot: a port per boot-time disk, in
//	              disk order (so /dev/vda, vdb, … follow it), then the spare
//	              ones for hot-plug
//
// q35's root bus cannot hot-plug, so boot-time NICs there cannot be
// unplugged; bridge:detach never unplugs (it takes the link down), and
// disks keep root ports so that disk:detach can unplug a boot-time disk.
//
// pc (00:01 is the PIIX3, and its root bus hot-plugs):
//
//	00:02.0 …     the boot-time NICs, then the boot-time disks, then
//	              virtio-serial and virtio-rng
//
// The version is part of every snapshot's device list and every fixture
// key, so that a snapshot taken with one layout is never loaded into a
// machine laid out by another (its device state names devices that are
// elsewhere). Bump it with any change of slots or buses.
//
// 1: every boot-time NIC and disk behind a q35 root port of its own, slots
// chosen by QEMU (eth0 at 0000:01:00.0). 2: as above.
const PCILayout = 2

const (
	firstNICSlot = 2
	// lastSlot is the highest slot handed out; 0x1f is q35's ICH9 and is
	// kept free on pc too so that both machines hold the same number.
	lastSlot = 0x1e
)

// layout is where a machine's devices sit. On q35: its root ports in order
// (hp0, hp1, …), the root port of each NIC and disk by ID ("" for a NIC on
// the root bus) and the ports left for hot-plug. For every PCI device (pc
// and q35) its bus options, ",bus=…[,addr=…]". microvm has no PCI: all
// empty.
type layout struct {
	ports []string
	of    map[string]string
	free  []string

	at          map[string]string // NIC or disk ID → bus options
	serial, rng string
	portAt      []string // per root port
}

// placement lays c's devices out (see PCILayout); an error says they do not
// fit.
func (c Config) placement() (layout, error) {
	l := layout{of: map[string]string{}, at: map[string]string{}}
	if err := c.placePorts(&l); err != nil {
		return l, err
	}
	return l, c.placeSlots(&l)
}

// placePorts gives q35 root ports to the disks and to NICs pinned to one
// (NIC.Port: a NIC hot-plugged before a snapshot, recreated by the
// restore); the other NICs stay on the root bus. Pinned devices get their
// ports, the other disks the first ports left, in order. There is a port
// per disk and pinned NIC plus HotplugPorts spare ones, unless RootPorts
// fixes the number.
func (c Config) placePorts(l *layout) error {
	if c.Machine != MachineQ35 {
		return nil
	}
	type dev struct{ id, port string }
	var devs []dev
	for _, x := range c.NICs {
		if x.Port != "" {
			devs = append(devs, dev{x.ID, x.Port})
		}
	}
	for _, x := range c.Disks {
		devs = append(devs, dev{x.ID, x.Port})
	}
	n := c.RootPorts
	if n <= 0 {
		n = len(devs) + max(c.HotplugPorts, 0)
	}
	for i := range n {
		l.ports = append(l.ports, fmt.Sprintf("hp%d", i))
	}
	used := map[string]bool{}
	for _, d := range devs {
		if d.port == "" {
			continue
		}
		if !slices.Contains(l.ports, d.port) {
			return fmt.Errorf("vmm: device %q: no root port %q (the machine has %d)", d.id, d.port, n)
		}
		if used[d.port] {
			return fmt.Errorf("vmm: device %q: root port %q holds another device", d.id, d.port)
		}
		used[d.port] = true
		l.of[d.id] = d.port
	}
	next := 0
	for _, d := range devs {
		if d.port != "" {
			continue
		}
		for next < n && used[l.ports[next]] {
			next++
		}
		if next == n {
			return fmt.Errorf("vmm: device %q: no root port left (the machine has %d)", d.id, n)
		}
		used[l.ports[next]] = true
		l.of[d.id] = l.ports[next]
	}
	for _, p := range l.ports {
		if !used[p] {
			l.free = append(l.free, p)
		}
	}
	return nil
}

// placeSlots gives every PCI device its root-bus slot, or its root port.
func (c Config) placeSlots(l *layout) error {
	var bus string
	switch c.Machine {
	case MachineQ35:
		bus = "pcie.0"
	case MachinePC:
		bus = "pci.0"
	default:
		return nil
	}
	slot := firstNICSlot
	next := func() string {
		o := fmt.Sprintf(",bus=%s,addr=%#x", bus, slot)
		slot++
		return o
	}
	if c.Machine == MachineQ35 {
		l.serial = fmt.Sprintf(",bus=%s,addr=0x1", bus)
	}
	for _, n := range c.NICs {
		if p := l.of[n.ID]; p != "" {
			l.at[n.ID] = ",bus=" + p
		} else {
			l.at[n.ID] = next()
		}
	}
	if c.Machine == MachinePC {
		for _, d := range c.Disks {
			l.at[d.ID] = next()
		}
		l.serial = next()
	}
	l.rng = next()
	for range l.ports {
		l.portAt = append(l.portAt, next())
	}
	for _, d := range c.Disks {
		if p := l.of[d.ID]; p != "" {
			l.at[d.ID] = ",bus=" + p
		}
	}
	if last := slot - 1; last > lastSlot {
		return fmt.Errorf("vmm: %d NICs, %d disks and %d root ports do not fit on the root PCI bus (they need slots up to %#x, the last is %#x): attach fewer devices or lower HotplugPorts",
			len(c.NICs), len(c.Disks), len(l.ports), last, lastSlot)
	}
	return nil
}
