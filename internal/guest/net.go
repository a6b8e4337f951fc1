package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/netsim"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// errFmtHotNICSnapshot refuses snapshots of a machine whose hot-plugged
// card sits where only QEMU knows: off q35 there are no root ports to pin
// it to, so a restore could not put it back where the guest saw it.
const errFmtHotNICSnapshot = "the VM has a NIC hot-plugged on bridge `%s` on a `%s` machine, where a restore could not put it back in place (use machine = \"q35\", the default, or attach before boot)"

// nicDev is one network card of a machine, in QEMU device order.
type nicDev struct {
	spec     lab.NICSpec // ID is QEMU's; Bridge is "" while parked
	previous string      // a MAC the guest's driver may still carry ("" = spec.MAC)
	hot      bool        // hot-plugged into this QEMU
	park     *parking    // set while the card is on no bridge
}

// netState is a machine's network cards: what a snapshot records, the MACs
// a restored guest may still carry from its snapshot, and the cards a
// restore left on no bridge.
type netState struct {
	mu   sync.Mutex
	devs []*nicDev
	// gateway is the default route the agent last set for an uplink ("":
	// none), removed again when the uplink goes away.
	gateway string
}

// boot records the cards a machine started with.
func (s *netState) boot(specs []lab.NICSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range specs {
		s.devs = append(s.devs, &nicDev{spec: n})
	}
}

// closeParked drops the connections of parked cards (QEMU has gone).
func (s *netState) closeParked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devs {
		if d.park != nil {
			d.park.close()
		}
	}
}

// takeParked removes a parked card from the parked ones, preferring one
// that was on a bridge of that name; nil when none is parked.
func (s *netState) takeParked(bridge string) *nicDev {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pick *nicDev
	for _, d := range s.devs {
		if d.park == nil || d.park.taken {
			continue
		}
		if pick == nil || (d.park.bridge == bridge && pick.park.bridge != bridge) {
			pick = d
		}
	}
	if pick != nil {
		pick.park.taken = true
	}
	return pick
}

// parking holds the netdev connection of a restored card that is on no
// bridge: QEMU connects it to a socket of ours, and bridge:attach hands
// the connection to the bridge's port instead of hot-plugging a new card
// (10-lua-api.md §3.3: a vm fixture's NICs come back unplugged).
type parking struct {
	bridge string // the bridge the card was on when snapshotted
	ln     *net.UnixListener
	taken  bool // being adopted (netState.mu)

	mu     sync.Mutex
	c      net.Conn      // QEMU's connection, once accepted
	ready  chan struct{} // closed when c is set
	closed bool
}

// park listens on path for a card's netdev.
func park(path, bridge string) (*parking, error) {
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("parking a NIC: %w", err)
	}
	p := &parking{bridge: bridge, ln: ln, ready: make(chan struct{})}
	go func() {
		// QEMU connects once; nothing else knows the path.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			c.Close()
			return
		}
		p.c = c
		close(p.ready)
	}()
	return p, nil
}

// take waits for QEMU's connection and hands it over.
func (p *parking) take(ctx context.Context) (net.Conn, error) {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("the card's netdev never connected: %w", ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.c
	p.c = nil
	if c == nil {
		return nil, errors.New("the card's netdev connection is gone")
	}
	return c, nil
}

// close drops the connection unless it was handed over.
func (p *parking) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.c != nil {
		p.c.Close()
		p.c = nil
	}
}

// checkNICSnapshot refuses what a restore could not rebuild: hot-plugged
// cards off q35.
func (g *Machine) checkNICSnapshot() error {
	return g.net.checkSnapshot(g.vm.Config().Machine)
}

func (s *netState) checkSnapshot(machine vmm.MachineType) error {
	if machine == vmm.MachineQ35 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devs {
		if d.hot {
			return fmt.Errorf(errFmtHotNICSnapshot, d.spec.Bridge, machine)
		}
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

// listenNIC makes a NIC's switch port listen in the machine dir and
// returns QEMU's view of it.
func listenNIC(dir string, n lab.NICSpec) (vmm.NIC, error) {
	path := filepath.Join(dir, n.ID+".sock")
	if err := n.Listen(path); err != nil {
		return vmm.NIC{}, err
	}
	return vmm.NIC{ID: n.ID, Socket: path, MAC: n.MAC, Server: n.Server}, nil
}

// manifestNICs lists the cards for a snapshot manifest with the root
// ports they sit on.
func (g *Machine) manifestNICs(ports map[string]string) []snapfile.NIC {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	out := []snapfile.NIC{}
	for _, d := range g.net.devs {
		out = append(out, snapfile.NIC{Bridge: d.spec.Bridge, MAC: d.spec.MAC, Port: ports[d.spec.ID]})
	}
	return out
}

// fitNICs lays out the cards of a machine restored from a snapshot: QEMU
// must have the snapshot's cards, where it had them, whatever bridges the
// VM is on now. Each card goes to the first of the VM's NICs on a bridge
// of the card's name, then to the NICs left over in order; a card takes
// that NIC's id, MAC and switch port (the guest, whose driver carries the
// card's old MAC, is told the new one by ConfigureNet). Cards no NIC wants
// are parked on no bridge until an attach takes them over; NICs left
// without a card are returned, to be hot-plugged once the guest runs.
func fitNICs(dir string, cards []snapfile.NIC, want []lab.NICSpec) ([]vmm.NIC, []*nicDev, []lab.NICSpec, error) {
	pick := make([]int, len(cards))
	used := make([]bool, len(want))
	for i, c := range cards {
		pick[i] = -1
		for j, w := range want {
			if !used[j] && c.Bridge != "" && w.Bridge == c.Bridge {
				pick[i], used[j] = j, true
				break
			}
		}
	}
	for i := range cards {
		for j := range want {
			if pick[i] < 0 && !used[j] {
				pick[i], used[j] = j, true
			}
		}
	}
	var qemu []vmm.NIC
	var devs []*nicDev
	fail := func(err error) ([]vmm.NIC, []*nicDev, []lab.NICSpec, error) {
		for _, d := range devs {
			if d.park != nil {
				d.park.close()
			}
		}
		return nil, nil, nil, err
	}
	for i, c := range cards {
		if j := pick[i]; j >= 0 {
			q, err := listenNIC(dir, want[j])
			if err != nil {
				return fail(err)
			}
			q.Port = c.Port
			d := &nicDev{spec: want[j]}
			if c.MAC != want[j].MAC {
				d.previous = c.MAC
			}
			qemu, devs = append(qemu, q), append(devs, d)
			continue
		}
		id := fmt.Sprintf("park%d", i)
		path := filepath.Join(dir, id+".sock")
		p, err := park(path, c.Bridge)
		if err != nil {
			return fail(err)
		}
		qemu = append(qemu, vmm.NIC{ID: id, Socket: path, MAC: c.MAC, Port: c.Port})
		devs = append(devs, &nicDev{spec: lab.NICSpec{ID: id, MAC: c.MAC}, park: p})
	}
	var extra []lab.NICSpec
	for j, w := range want {
		if !used[j] {
			extra = append(extra, w)
		}
	}
	return qemu, devs, extra, nil
}

// linkParked takes the carrier away from parked cards, so the guest sends
// nothing into a connection no switch reads.
func (g *Machine) linkParked(ctx context.Context) error {
	g.net.mu.Lock()
	var ids []string
	for _, d := range g.net.devs {
		if d.park != nil {
			ids = append(ids, d.spec.ID)
		}
	}
	g.net.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, g.vm.SetLink(ctx, id, false))
	}
	return errors.Join(errs...)
}

// AttachNIC implements lab.NetMachine: a parked card is taken over, else
// a new card is hot-plugged (QMP netdev_add + device_add) with its port
// listening in the machine's scratch dir.
func (g *Machine) AttachNIC(ctx context.Context, n lab.NICSpec) (string, error) {
	if d := g.net.takeParked(n.Bridge); d != nil {
		return g.adopt(ctx, d, n)
	}
	if err := g.plugNIC(ctx, n); err != nil {
		return "", err
	}
	return n.ID, nil
}

// plugNIC hot-plugs a new card.
func (g *Machine) plugNIC(ctx context.Context, n lab.NICSpec) error {
	q, err := listenNIC(g.vm.Config().Scratch, n)
	if err != nil {
		return err
	}
	if err := g.vm.AttachNIC(ctx, q); err != nil {
		return err
	}
	g.net.mu.Lock()
	g.net.devs = append(g.net.devs, &nicDev{spec: n, hot: true})
	g.net.mu.Unlock()
	return nil
}

// adopt puts the parked card d on n's bridge: its connection goes to the
// bridge's port and its link comes up; the card keeps its QEMU id, takes
// n's MAC (the guest is told by ConfigureNet) and counts as n's card.
func (g *Machine) adopt(ctx context.Context, d *nicDev, n lab.NICSpec) (string, error) {
	undo := func() {
		g.net.mu.Lock()
		d.park.taken = false
		g.net.mu.Unlock()
	}
	if n.Adopt == nil {
		undo()
		return "", errors.New("the bridge port cannot take over a restored card")
	}
	c, err := d.park.take(ctx)
	if err != nil {
		undo()
		return "", err
	}
	n.Adopt(c)
	g.net.mu.Lock()
	id, old := d.spec.ID, d.spec.MAC
	n.ID = id
	d.spec, d.park = n, nil
	if old != n.MAC {
		d.previous = old
	}
	g.net.mu.Unlock()
	if err := g.vm.SetLink(ctx, id, true); err != nil {
		return "", err
	}
	return id, nil
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
	for _, d := range g.net.devs {
		if d.previous != "" && d.previous != d.spec.MAC {
			prev[d.spec.MAC] = d.previous
		}
	}
	prevGW := g.net.gateway
	g.net.mu.Unlock()
	req := proto.NetConfigReq{Gateway: cfg.Gateway, DNS: cfg.DNS, Ifaces: []proto.NetIface{}, Hosts: []proto.HostEntry{}}
	if prevGW != cfg.Gateway {
		req.PrevGateway = prevGW
	}
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
	g.net.mu.Lock()
	g.net.gateway = cfg.Gateway
	g.net.mu.Unlock()
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
	var out []vmm.NIC
	for _, n := range specs {
		q, err := listenNIC(dir, n)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}
