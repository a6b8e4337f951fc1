package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/provium/provium/internal/netsim"
)

// NIC error texts.
const (
	errFmtNicNoTap    = "nic:capture: vm `%s` has no TAP on bridge `%s` (not booted?). Call lab:boot() / vm:boot() first."
	errFmtNicNoVM     = "nic:%s: vm `%s` on bridge `%s` does not exist (yet)"
	errFmtNicDetached = "nic:%s: vm `%s` is no longer attached to bridge `%s`"
)

// NIC is one (VM, bridge) attachment: a MAC, an address on the bridge's
// subnet, a switch port and, while the VM runs, a QEMU network device.
// Fields are guarded by the bridge's lock.
type NIC struct {
	bridge *Bridge
	name   string // the member (VM) name
	vm     *VM    // nil while graph-only
	mac    netsim.MAC
	addr   netip.Addr
	port   *netsim.Port
	devID  string // QEMU id in the VM's current machine; "" when not plugged
	ifname string // as the guest agent reported it
	gone   bool   // detached (or the bridge closed)
}

// VMName is the member name.
func (n *NIC) VMName() string { return n.name }

// Bridge is the NIC's bridge.
func (n *NIC) Bridge() *Bridge { return n.bridge }

// VM is the member VM (nil while graph-only).
func (n *NIC) VM() *VM {
	n.bridge.refresh()
	n.bridge.mu.Lock()
	defer n.bridge.mu.Unlock()
	return n.vm
}

// MAC is the NIC's MAC address.
func (n *NIC) MAC() string {
	n.bridge.mu.Lock()
	defer n.bridge.mu.Unlock()
	return n.mac.String()
}

// IP is the guest's address on the bridge; ok is false for raw links
// (addressing "none") and graph-only members.
func (n *NIC) IP() (string, bool) {
	v := n.VM()
	if !n.bridge.addressing(v) {
		return "", false
	}
	n.bridge.mu.Lock()
	defer n.bridge.mu.Unlock()
	if !n.addr.IsValid() {
		return "", false
	}
	return n.addr.String(), true
}

// Ifname is the guest's interface name ("" until the agent reported it).
func (n *NIC) Ifname() string {
	n.bridge.mu.Lock()
	defer n.bridge.mu.Unlock()
	return n.ifname
}

// IsConnected reports the switch link state.
func (n *NIC) IsConnected() bool { return n.bridge.sw.LinkUp(n.name) }

// Counters are the port's counters (zeros before boot).
func (n *NIC) Counters() netsim.Counters {
	if p := n.bridge.sw.Port(n.name); p != nil {
		return p.Counters()
	}
	return netsim.Counters{}
}

// Capture is `nic:capture()`: the port's frames, as pcap.
func (n *NIC) Capture() (*netsim.Capture, error) {
	n.bridge.mu.Lock()
	vm, gone := n.vm, n.gone
	n.bridge.mu.Unlock()
	p := n.bridge.sw.Port(n.name)
	if gone || p == nil || vm == nil || vm.Machine() == nil {
		return nil, fmt.Errorf(errFmtNicNoTap, n.name, n.bridge.name)
	}
	return p.Capture()
}

// SetConnected is `nic:disconnect()`/`reconnect()`: the switch port passes
// nothing while down, and a running guest sees its carrier follow (QMP
// set_link). Membership and rules stay.
func (n *NIC) SetConnected(ctx context.Context, up bool) error {
	method := "reconnect"
	if !up {
		method = "disconnect"
	}
	n.bridge.mu.Lock()
	vm, gone, dev := n.vm, n.gone, n.devID
	n.bridge.mu.Unlock()
	if gone {
		return fmt.Errorf(errFmtNicDetached, method, n.name, n.bridge.name)
	}
	n.bridge.sw.SetLink(n.name, up)
	if vm == nil || dev == "" {
		return nil
	}
	nm, ok := vm.Machine().(NetMachine)
	if !ok {
		return nil
	}
	if err := nm.SetLink(ctx, dev, up); err != nil {
		return fmt.Errorf("nic:%s: vm `%s`: %w", method, n.name, err)
	}
	return nil
}

// NICSpec is one network card of a booting machine: QEMU's id, the MAC,
// and Listen, which the backend calls with the unix socket path (in the
// machine's scratch dir) QEMU's netdev will connect to.
type NICSpec struct {
	ID     string
	MAC    string
	Bridge string
	Listen func(path string) error
	// Adopt hands the port a connection QEMU already made (a restored
	// card parked on no bridge, taken over by bridge:attach).
	Adopt func(c net.Conn)
	// Server makes QEMU itself listen on the path (Listen is still told
	// it): two guests joined without a switch, for benchmarks.
	Server bool
}

// NetIface is one NIC of a guest network configuration.
type NetIface struct {
	MAC     string
	Address string // "10.64.0.2/24"; "" for raw links
}

// HostEntry is one hosts-file line.
type HostEntry struct{ Address, Name string }

// NetConfig is a guest's whole network configuration.
type NetConfig struct {
	Ifaces  []NetIface
	Hosts   []HostEntry
	Gateway string
	DNS     []string
}

// NetMachine is implemented by machines with network devices.
type NetMachine interface {
	// AttachNIC gives the running machine a NIC: it hot-plugs one (QMP
	// netdev_add + device_add), or takes over a card a restore left on no
	// bridge (a vm fixture copy's). It returns the QEMU id of the card,
	// which SetLink takes.
	AttachNIC(ctx context.Context, nic NICSpec) (string, error)
	// SetLink sets the carrier the guest sees on NIC id.
	SetLink(ctx context.Context, id string, up bool) error
	// ConfigureNet applies the guest's network configuration (agent) and
	// returns the interface name of each NIC, in order.
	ConfigureNet(ctx context.Context, cfg NetConfig) ([]string, error)
}
