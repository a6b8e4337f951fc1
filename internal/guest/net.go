package guest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/netsim"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// netState is a machine's network devices: what a snapshot records, and
// the MACs a restored guest may still carry from its snapshot.
type netState struct {
	mu       sync.Mutex
	nics     []lab.NICSpec // QEMU device order
	previous []string      // per device: the snapshot's MAC ("" = same)
	hot      []string      // bridges of hot-plugged NICs
}

// checkNICSnapshot refuses snapshots of machines with hot-plugged NICs: a
// restore recreates NICs as boot-time devices, whose PCI layout would not
// match the saved state (as for disks).
func (g *Machine) checkNICSnapshot() error {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	if len(g.net.hot) > 0 {
		return fmt.Errorf("the VM has a NIC hot-plugged on bridge `%s`; a restore could not recreate it in place (attach before boot, or shut the VM down and boot it again, then snapshot)", g.net.hot[0])
	}
	return nil
}

// NetHost is the run's bridge numbering and subnets (lab.Env.Net).
func (b *Backend) NetHost() *netsim.Host {
	b.netOnce.Do(func() { b.net = netsim.NewHost() })
	return b.net
}

// NetHost implements the lab's optional network host lookup.
func (f *fileBackend) NetHost() *netsim.Host { return f.b.NetHost() }

// NetHost gives every file of a lazy run one Host without making the
// backend.
func (l *Lazy) NetHost() *netsim.Host {
	l.netOnce.Do(func() { l.net = netsim.NewHost() })
	return l.net
}

// NetHost implements the lab's optional network host lookup.
func (f *lazyFile) NetHost() *netsim.Host { return f.l.NetHost() }

// listenNICs makes each NIC's switch port listen in the machine dir and
// returns QEMU's view of them.
func listenNICs(dir string, specs []lab.NICSpec) ([]vmm.NIC, error) {
	var out []vmm.NIC
	for _, n := range specs {
		path := filepath.Join(dir, n.ID+".sock")
		if err := n.Listen(path); err != nil {
			return nil, err
		}
		out = append(out, vmm.NIC{ID: n.ID, Socket: path, MAC: n.MAC, Server: n.Server})
	}
	return out, nil
}

// manifestNICs lists the devices for a snapshot manifest.
func (g *Machine) manifestNICs() []snapfile.NIC {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	out := []snapfile.NIC{}
	for _, n := range g.net.nics {
		out = append(out, snapfile.NIC{Bridge: n.Bridge, MAC: n.MAC})
	}
	return out
}

// AttachNIC implements lab.NetMachine: QMP netdev_add + device_add of a NIC
// whose port listens in the machine's scratch dir.
func (g *Machine) AttachNIC(ctx context.Context, n lab.NICSpec) error {
	nics, err := listenNICs(g.vm.Config().Scratch, []lab.NICSpec{n})
	if err != nil {
		return err
	}
	if err := g.vm.AttachNIC(ctx, nics[0]); err != nil {
		return err
	}
	g.net.mu.Lock()
	g.net.nics = append(g.net.nics, n)
	g.net.previous = append(g.net.previous, "")
	g.net.hot = append(g.net.hot, n.Bridge)
	g.net.mu.Unlock()
	return nil
}

// SetLink implements lab.NetMachine.
func (g *Machine) SetLink(ctx context.Context, id string, up bool) error {
	return g.vm.SetLink(ctx, id, up)
}

// ConfigureNet implements lab.NetMachine through the agent's net_config.
func (g *Machine) ConfigureNet(ctx context.Context, cfg lab.NetConfig) ([]string, error) {
	ag, err := g.EnsureAgent(ctx)
	if err != nil {
		return nil, err
	}
	g.net.mu.Lock()
	prev := map[string]string{}
	for i, n := range g.net.nics {
		if i < len(g.net.previous) && g.net.previous[i] != "" && g.net.previous[i] != n.MAC {
			prev[n.MAC] = g.net.previous[i]
		}
	}
	g.net.mu.Unlock()
	req := proto.NetConfigReq{Gateway: cfg.Gateway, DNS: cfg.DNS, Ifaces: []proto.NetIface{}, Hosts: []proto.HostEntry{}}
	for _, i := range cfg.Ifaces {
		req.Ifaces = append(req.Ifaces, proto.NetIface{MAC: i.MAC, Address: i.Address, Previous: prev[i.MAC]})
	}
	for _, h := range cfg.Hosts {
		req.Hosts = append(req.Hosts, proto.HostEntry{Address: h.Address, Name: h.Name})
	}
	names, err := ag.NetConfig(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("agent net_config: %w", err)
	}
	return names, nil
}

// prepareNICs creates the machine dir (vmm.Start would too) so the NIC
// ports can listen in it before QEMU starts and connects.
func prepareNICs(dir string, specs []lab.NICSpec) ([]vmm.NIC, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	return listenNICs(dir, specs)
}
