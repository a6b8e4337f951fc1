package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// HostProviumName is what the uplink's host-loopback address is called in
// every member's hosts file while the uplink is on.
const HostProviumName = "host.provium"

// addNIC records a NIC of the VM (attach order).
func (v *VM) addNIC(n *NIC) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !slices.Contains(v.nics, n) {
		v.nics = append(v.nics, n)
	}
}

// NICs returns the VM's NICs in attach order, binding it first to bridges
// that name it.
func (v *VM) NICs() []*NIC {
	for _, b := range v.lab.env.net.list() {
		b.refresh()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.nics)
}

// NIC is `vm:nic(name)`: by bridge name, else by guest interface name
// (`eth0`), else `eth<N>`/`ens<N>`/`enp0s<N>` as the N-th NIC by bridge
// name.
func (v *VM) NIC(name string) (*NIC, error) {
	nics := v.NICs()
	for _, n := range nics {
		if n.bridge.name == name {
			return n, nil
		}
	}
	for _, n := range nics {
		if n.Ifname() == name {
			return n, nil
		}
	}
	for _, prefix := range []string{"eth", "ens", "enp0s"} {
		if k, ok := strings.CutPrefix(name, prefix); ok {
			var i int
			if _, err := fmt.Sscanf(k, "%d", &i); err == nil && fmt.Sprint(i) == k {
				byName := slices.Clone(nics)
				sort.SliceStable(byName, func(a, b int) bool { return byName[a].bridge.name < byName[b].bridge.name })
				if i >= 0 && i < len(byName) {
					return byName[i], nil
				}
			}
		}
	}
	return nil, fmt.Errorf("vm:nic: no NIC `%s` on vm `%s` (try a bridge name like `lan` or a guest iface like `eth0`)", name, v.name)
}

// forgetNIC drops a NIC from the VM's list and marks it gone.
func (v *VM) forgetNIC(n *NIC) {
	v.mu.Lock()
	v.nics = slices.DeleteFunc(v.nics, func(x *NIC) bool { return x == n })
	v.mu.Unlock()
	n.bridge.mu.Lock()
	n.gone = true
	n.bridge.mu.Unlock()
}

// dropNIC is a detach: the guest sees its link go down (the device stays
// until the next boot, which leaves it out).
func (v *VM) dropNIC(ctx context.Context, n *NIC) error {
	v.forgetNIC(n)
	n.bridge.mu.Lock()
	dev := n.devID
	n.devID = ""
	n.bridge.mu.Unlock()
	if dev == "" {
		return nil
	}
	if nm, ok := v.currentMachine().(NetMachine); ok {
		if err := nm.SetLink(ctx, dev, false); err != nil {
			return fmt.Errorf("bridge:detach: vm `%s`: %w", v.name, err)
		}
	}
	return nil
}

// bootNICs prepares the NICs a machine starting now gets: a switch port
// each and QEMU ids net0, net1, … in attach order.
func (v *VM) bootNICs() ([]NICSpec, []*NIC, error) {
	nics := v.NICs()
	specs := make([]NICSpec, 0, len(nics))
	var live []*NIC
	for _, n := range nics {
		p, err := n.bridge.sw.AddPort(n.name)
		if err != nil {
			return nil, nil, fmt.Errorf("bridge `%s`: %w", n.bridge.name, err)
		}
		n.bridge.mu.Lock()
		n.port = p
		mac := n.mac.String()
		n.bridge.mu.Unlock()
		specs = append(specs, NICSpec{ID: fmt.Sprintf("net%d", len(specs)), MAC: mac, Bridge: n.bridge.name, Listen: p.Listen, Adopt: p.Adopt})
		live = append(live, n)
	}
	return specs, live, nil
}

// plugged records the QEMU ids of a started machine's NICs and makes the
// guest's carrier match links disconnected before the boot.
func (v *VM) plugged(ctx context.Context, specs []NICSpec, nics []*NIC) error {
	v.mu.Lock()
	v.nicSeq = len(specs)
	m := v.machine
	v.mu.Unlock()
	var errs []error
	for i, n := range nics {
		n.bridge.mu.Lock()
		n.devID = specs[i].ID
		n.bridge.mu.Unlock()
		if !n.bridge.sw.LinkUp(n.name) {
			if nm, ok := m.(NetMachine); ok {
				errs = append(errs, nm.SetLink(ctx, specs[i].ID, false))
			}
		}
	}
	return errors.Join(errs...)
}

// unplugAll forgets the devices of a machine that stopped.
func (v *VM) unplugAll() {
	v.mu.Lock()
	nics := slices.Clone(v.nics)
	v.netApplied = false
	v.mu.Unlock()
	for _, n := range nics {
		n.bridge.mu.Lock()
		n.devID = ""
		n.ifname = ""
		n.bridge.mu.Unlock()
	}
}

// hotplug gives a running VM the NIC of a new attachment; a VM that is not
// running gets it at its next boot.
func (v *VM) hotplug(ctx context.Context, n *NIC) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	m := v.currentMachine()
	if m == nil {
		return nil
	}
	n.bridge.mu.Lock()
	plugged := n.devID != ""
	n.bridge.mu.Unlock()
	if plugged {
		return nil
	}
	nm, ok := m.(NetMachine)
	if !ok {
		return fmt.Errorf(errFmtHotplug, v.name, n.bridge.name, "the VM backend cannot hot-plug NICs")
	}
	p, err := n.bridge.sw.AddPort(n.name)
	if err != nil {
		return fmt.Errorf(errFmtHotplug, v.name, n.bridge.name, err)
	}
	v.mu.Lock()
	id := fmt.Sprintf("net%d", v.nicSeq)
	v.nicSeq++
	v.mu.Unlock()
	n.bridge.mu.Lock()
	n.port = p
	spec := NICSpec{ID: id, MAC: n.mac.String(), Bridge: n.bridge.name, Listen: p.Listen, Adopt: p.Adopt}
	n.bridge.mu.Unlock()
	id, err = nm.AttachNIC(ctx, spec)
	if err != nil {
		return fmt.Errorf(errFmtHotplug, v.name, n.bridge.name, err)
	}
	n.bridge.mu.Lock()
	n.devID = id
	n.bridge.mu.Unlock()
	if !n.bridge.sw.LinkUp(n.name) {
		return nm.SetLink(ctx, id, false)
	}
	return nil
}

// netConfig is the guest configuration the VM's NICs ask for.
func (v *VM) netConfig() (NetConfig, []*NIC) {
	v.mu.Lock()
	nics := slices.Clone(v.nics)
	v.mu.Unlock()
	cfg := NetConfig{Ifaces: []NetIface{}, Hosts: []HostEntry{}}
	var plugged []*NIC
	for _, n := range nics {
		b := n.bridge
		auto := b.addressing(v)
		b.mu.Lock()
		if n.devID == "" || n.gone {
			b.mu.Unlock()
			continue
		}
		iface := NetIface{MAC: n.mac.String()}
		if auto && n.addr.IsValid() {
			iface.Address = fmt.Sprintf("%s/%d", n.addr, b.subnet.Bits())
		}
		var members []*NIC
		if auto {
			members = slices.Clone(b.members)
		}
		up := b.uplink
		b.mu.Unlock()
		cfg.Ifaces = append(cfg.Ifaces, iface)
		plugged = append(plugged, n)
		for _, m := range members {
			if !b.addressing(m.VM()) {
				continue
			}
			b.mu.Lock()
			addr := m.addr
			b.mu.Unlock()
			if addr.IsValid() {
				cfg.Hosts = append(cfg.Hosts, HostEntry{Address: addr.String(), Name: m.name + "." + b.name})
			}
		}
		if auto && up != nil && cfg.Gateway == "" {
			cfg.Gateway = up.gateway.String()
			cfg.DNS = []string{up.gateway.String()}
			cfg.Hosts = append(cfg.Hosts, HostEntry{Address: up.hostAddr.String(), Name: HostProviumName})
		}
	}
	return cfg, plugged
}

// applyNet brings the running guest's network in line with its NICs:
// addresses, hosts entries, the uplink's route. It does nothing for a VM
// that is not booted or never had a NIC.
func (v *VM) applyNet(ctx context.Context, site string) error {
	if v.State() != Booted {
		return nil
	}
	nm, ok := v.currentMachine().(NetMachine)
	if !ok {
		return nil
	}
	v.netMu.Lock()
	defer v.netMu.Unlock()
	cfg, plugged := v.netConfig()
	v.mu.Lock()
	applied := v.netApplied
	v.mu.Unlock()
	if len(cfg.Ifaces) == 0 && !applied {
		return nil
	}
	names, err := nm.ConfigureNet(ctx, cfg)
	if err != nil {
		return fmt.Errorf(errFmtNetConfig, site, v.name, err)
	}
	v.mu.Lock()
	v.netApplied = true
	v.mu.Unlock()
	for i, n := range plugged {
		if i < len(names) {
			n.bridge.mu.Lock()
			n.ifname = names[i]
			n.bridge.mu.Unlock()
		}
	}
	return nil
}
