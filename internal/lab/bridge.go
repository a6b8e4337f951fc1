package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/provium/provium/internal/netsim"
)

// Bridge error texts.
const (
	errFmtBridgeTarget     = "bridge expected a VM userdata or string, got %s"
	errFmtBridgeOtherVM    = "bridge:attach: a different vm named `%s` is already attached to bridge `%s`"
	errFmtBridgeClosed     = "bridge:%s: bridge `%s` is closed"
	errFmtBridgeOptKey     = "lab:bridge: opts: unknown key `%s`"
	errFmtBridgeSubnet     = "lab:bridge: opts.subnet `%s` is not an IPv4 CIDR such as 10.0.0.0/24"
	errFmtBridgeSubnetSize = "lab:bridge: opts.subnet `%s`: prefix must be /30 or shorter (room for .1 and a VM)"
	errFmtBridgeOptType    = "lab:bridge: opts.%s: expected %s, got %s"
	errFmtBridgeAddressing = "lab:bridge: opts.addressing `%s`: expected \"auto\" or \"none\""
	errFmtNotAttached      = "bridge:%s: vm `%s` is not attached to bridge `%s` (attached: [%s]). Call bridge:attach(\"%s\") first."
	errFmtSubnetFull       = "bridge:attach: bridge `%s`: subnet %s has no address left for vm `%s`"
	errFmtHotplug          = "bridge:attach: vm `%s`: hot-plugging its NIC on bridge `%s` failed: %v"
	errFmtNetConfig        = "%s: vm `%s`: configuring the guest network failed: %v"
	msgFmtRouteNotice      = "provium: bridge:route: routes are recorded only; frames do not cross from bridge `%s` to other bridges yet\n"
)

// Addressing modes (10-lua-api.md §13).
const (
	AddressingAuto = "auto"
	AddressingNone = "none"
)

// maxBridgePrefix keeps room for the gateway (.1) and at least one VM.
const maxBridgePrefix = 30

// BridgeOpts are `lab:bridge(name, opts)`'s options. Zero values mean "the
// default" (a /24 unique in the run; a seed derived from the run seed;
// addressing by the guest_os the member's profile names).
type BridgeOpts struct {
	Subnet     netip.Prefix // masked; invalid (zero) when not given
	Seed       *uint64      // loss RNG seed (the Lua int's bits)
	Addressing string       // "", AddressingAuto or AddressingNone
}

// ParseBridgeOpts validates a `{subnet=, seed=, addressing=}` table
// converted from Lua.
func ParseBridgeOpts(m map[string]any) (BridgeOpts, error) {
	var o BridgeOpts
	for _, k := range sortedKeys(m) {
		v := m[k]
		if v == nil {
			continue
		}
		switch k {
		case "subnet":
			s, ok := v.(string)
			if !ok {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeOptType, k, "string", luaTypeName(v))
			}
			p, err := netip.ParsePrefix(s)
			if err != nil || !p.Addr().Is4() {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeSubnet, s)
			}
			if p.Bits() > maxBridgePrefix {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeSubnetSize, s)
			}
			o.Subnet = p.Masked()
		case "seed":
			n, ok := asInteger(v)
			if !ok {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeOptType, k, "integer", luaTypeName(v))
			}
			seed := uint64(n)
			o.Seed = &seed
		case "addressing":
			s, ok := v.(string)
			if !ok {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeOptType, k, "string", luaTypeName(v))
			}
			if s != AddressingAuto && s != AddressingNone {
				return BridgeOpts{}, fmt.Errorf(errFmtBridgeAddressing, s)
			}
			o.Addressing = s
		default:
			return BridgeOpts{}, fmt.Errorf(errFmtBridgeOptKey, k)
		}
	}
	return o, nil
}

// Equal reports whether two option sets ask for the same bridge.
func (o BridgeOpts) Equal(p BridgeOpts) bool {
	if o.Subnet != p.Subnet || o.Addressing != p.Addressing {
		return false
	}
	if (o.Seed == nil) != (p.Seed == nil) {
		return false
	}
	return o.Seed == nil || *o.Seed == *p.Seed
}

// String renders the options for messages: `subnet=10.0.0.0/24, seed=7`.
func (o BridgeOpts) String() string {
	subnet, seed := "default", "default"
	if o.Subnet.IsValid() {
		subnet = o.Subnet.String()
	}
	if o.Seed != nil {
		seed = strconv.FormatInt(int64(*o.Seed), 10) // as Lua would print it
	}
	s := "subnet=" + subnet + ", seed=" + seed
	if o.Addressing != "" {
		s += ", addressing=" + o.Addressing
	}
	return s
}

// fileNet is what the bridges of one file share: the list a booting VM
// looks through for bridges it is a member of by name.
type fileNet struct {
	mu      sync.Mutex
	bridges []*Bridge
}

func (f *fileNet) add(b *Bridge) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bridges = append(f.bridges, b)
}

func (f *fileNet) list() []*Bridge {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bridges)
}

func (f *fileNet) remove(b *Bridge) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bridges = slices.DeleteFunc(f.bridges, func(x *Bridge) bool { return x == b })
}

// Bridge is a virtual L2 network: its name, options, members in attach
// order (each a NIC) and the switch that carries their frames.
type Bridge struct {
	name string
	lab  *Lab // the creating lab: names attach through it and its parents
	opts BridgeOpts
	// created is the creation sequence number within the file (Lab.created).
	created uint64
	sw      *netsim.Switch
	num     int          // the switch's number in the run (MACs)
	subnet  netip.Prefix // effective subnet

	mu       sync.Mutex
	members  []*NIC
	nextPort int // MACs handed out
	closed   bool
	routes   []string
	noticed  bool // the route notice was printed
	uplink   *uplinkState
	gateway  *netsim.Uplink // made on the first enable_uplink, kept (see netsim.Uplink)
}

func newBridge(l *Lab, name string, opts BridgeOpts) (*Bridge, error) {
	b := &Bridge{name: name, lab: l, opts: opts, created: l.created.Add(1), subnet: opts.Subnet}
	seed := b.defaultSeed()
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	sw, num, err := l.env.Net.NewSwitch(name, seed)
	if err != nil {
		return nil, err
	}
	b.sw, b.num = sw, num
	if !b.subnet.IsValid() {
		if b.subnet, err = l.env.Net.DefaultSubnet(); err != nil {
			return nil, err
		}
	}
	l.env.net.add(b)
	return b, nil
}

// defaultSeed derives the loss seed from the run seed, the file and the
// bridge's path, so scheduling never changes it.
func (b *Bridge) defaultSeed() uint64 {
	h := fnv.New64a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], b.lab.env.Seed)
	h.Write(s[:])
	io.WriteString(h, b.lab.env.File+"\x00bridge\x00"+joinPath(b.lab.Path(), b.name))
	return h.Sum64()
}

func (b *Bridge) memberKind() MemberKind { return KindBridge }

// Name is the bridge's name.
func (b *Bridge) Name() string { return b.name }

// Lab is the lab that created the bridge.
func (b *Bridge) Lab() *Lab { return b.lab }

// Opts are the options the bridge was created with.
func (b *Bridge) Opts() BridgeOpts { return b.opts }

// Subnet is the bridge's effective subnet.
func (b *Bridge) Subnet() netip.Prefix { return b.subnet }

// Seed is the loss seed in effect.
func (b *Bridge) Seed() uint64 { return b.sw.Seed() }

// Switch is the switch carrying the bridge's frames.
func (b *Bridge) Switch() *netsim.Switch { return b.sw }

// target is an attach/detach argument after type checking.
type target struct {
	name string
	vm   *VM // nil: a name that resolves to no VM (yet)
}

// resolveTarget checks one VM argument: a VM, or a VM name looked up
// through the bridge's lab and its parents.
func (b *Bridge) resolveTarget(method string, x any) (target, error) {
	switch t := x.(type) {
	case *VM:
		if t == nil {
			return target{}, fmt.Errorf(errFmtBridgeTarget, "nil")
		}
		return target{name: t.Name(), vm: t}, nil
	case string:
		if err := validateVMName("bridge:"+method, t); err != nil {
			return target{}, err
		}
		if obj, _ := b.lab.find(KindVM, t); obj != nil {
			return target{name: t, vm: obj.(*VM)}, nil
		}
		return target{name: t}, nil
	}
	return target{}, fmt.Errorf(errFmtBridgeTarget, luaTypeName(x))
}

// memberName resolves a VM argument to a name, for rules that need no
// attachment.
func (b *Bridge) memberName(method string, x any) (string, error) {
	t, err := b.resolveTarget(method, x)
	return t.name, err
}

// attachedName resolves a VM argument that must be a member.
func (b *Bridge) attachedName(method string, x any) (string, error) {
	t, err := b.resolveTarget(method, x)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if indexNIC(b.members, t.name) < 0 {
		names := make([]string, len(b.members))
		for i, n := range b.members {
			names[i] = n.name
		}
		return "", fmt.Errorf(errFmtNotAttached, method, t.name, b.name, strings.Join(names, ", "), t.name)
	}
	return t.name, nil
}

// usedAddr reports whether a member holds addr. Caller holds b.mu.
func (b *Bridge) usedAddrLocked(a netip.Addr, pending []*NIC) bool {
	for _, n := range pending {
		if n.addr == a {
			return true
		}
	}
	return false
}

// freeAddr is the lowest free member address (.2, .3, …).
func (b *Bridge) freeAddr(pending []*NIC) (netip.Addr, bool) {
	_, upHost, _ := netsim.UplinkAddrs(b.subnet)
	for k := 0; ; k++ {
		a, ok := netsim.HostAddr(b.subnet, k)
		if !ok {
			return netip.Addr{}, false
		}
		if a != upHost && !b.usedAddrLocked(a, pending) {
			return a, true
		}
	}
}

// Attach adds members in order: each target is a *VM or a VM name (resolved
// through the bridge's lab chain; graph-only until such a VM exists). All
// targets are checked before any is added; attaching a member again is a
// no-op. A booted VM gets its NIC hot-plugged; Attach returns once every
// booted member's guest has its address and hosts entries.
func (b *Bridge) Attach(ctx context.Context, targets ...any) error {
	return b.attachWith(ctx, targets, nil)
}

// attachWith is Attach; onNew, when set, adjusts each new NIC (under the
// bridge lock) before it is committed.
func (b *Bridge) attachWith(ctx context.Context, targets []any, onNew func(*NIC)) error {
	resolved := make([]target, 0, len(targets))
	for _, x := range targets {
		t, err := b.resolveTarget("attach", x)
		if err != nil {
			return err
		}
		resolved = append(resolved, t)
	}
	b.refresh()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf(errFmtBridgeClosed, "attach", b.name)
	}
	// Validate against current members and earlier targets of this call
	// without changing anything.
	pending := slices.Clone(b.members)
	var added []*NIC
	var bound []*NIC
	next := b.nextPort
	for _, t := range resolved {
		i := indexNIC(pending, t.name)
		switch {
		case i < 0:
			addr, ok := b.freeAddr(pending)
			if !ok {
				b.mu.Unlock()
				return fmt.Errorf(errFmtSubnetFull, b.name, b.subnet, t.name)
			}
			next++
			n := &NIC{bridge: b, name: t.name, vm: t.vm, mac: netsim.PortMAC(b.num, next), addr: addr}
			pending = append(pending, n)
			added = append(added, n)
			if t.vm != nil {
				bound = append(bound, n)
			}
		case pending[i].vm == nil || t.vm == nil || pending[i].vm == t.vm:
			if pending[i].vm == nil && t.vm != nil {
				if !slices.Contains(added, pending[i]) {
					// Bound now, committed below with the rest.
					bound = append(bound, pending[i])
				}
			}
		default:
			b.mu.Unlock()
			return fmt.Errorf(errFmtBridgeOtherVM, t.name, b.name)
		}
	}
	for _, t := range resolved {
		if i := indexNIC(pending, t.name); i >= 0 && pending[i].vm == nil && t.vm != nil {
			pending[i].vm = t.vm
		}
	}
	if onNew != nil {
		for _, n := range added {
			onNew(n)
		}
	}
	b.members = pending
	b.nextPort = next
	b.mu.Unlock()
	for _, n := range bound {
		n.vm.addNIC(n)
	}
	return b.settle(ctx, "bridge:attach", bound)
}

// settle hot-plugs the NICs of booted VMs among plugged and brings every
// booted member's guest network up to date (addresses, hosts).
func (b *Bridge) settle(ctx context.Context, site string, plug []*NIC) error {
	var errs []error
	for _, n := range plug {
		if err := n.vm.hotplug(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.refreshGuests(ctx, site)...)
	return errors.Join(errs...)
}

// refreshGuests re-applies the network configuration of every booted
// member (hosts entries name every member).
func (b *Bridge) refreshGuests(ctx context.Context, site string) []error {
	var vms []*VM
	b.mu.Lock()
	for _, n := range b.members {
		if n.vm != nil && !slices.Contains(vms, n.vm) {
			vms = append(vms, n.vm)
		}
	}
	b.mu.Unlock()
	return runParallel(vms, func(v *VM) error { return v.applyNet(ctx, site) })
}

// Detach removes a member (a *VM or a name); a non-member is a no-op. The
// guest sees its link go down; its port, hosts entries and the rules naming
// it go.
func (b *Bridge) Detach(ctx context.Context, x any) error {
	t, err := b.resolveTarget("detach", x)
	if err != nil {
		return err
	}
	b.mu.Lock()
	i := indexNIC(b.members, t.name)
	if i < 0 {
		b.mu.Unlock()
		return nil
	}
	n := b.members[i]
	if n.vm != nil && t.vm != nil && n.vm != t.vm {
		b.mu.Unlock()
		return nil // a different VM of that name is the member; t is not
	}
	b.members = slices.Delete(b.members, i, i+1)
	b.mu.Unlock()
	b.sw.RemovePort(n.name)
	var errs []error
	if n.vm != nil {
		errs = append(errs, n.vm.dropNIC(ctx, n))
	}
	errs = append(errs, b.refreshGuests(ctx, "bridge:detach")...)
	return errors.Join(errs...)
}

func indexNIC(list []*NIC, name string) int {
	for i, a := range list {
		if a.name == name {
			return i
		}
	}
	return -1
}

// refresh binds graph-only members to VMs that have since been declared.
func (b *Bridge) refresh() {
	b.mu.Lock()
	var unresolved []string
	for _, a := range b.members {
		if a.vm == nil {
			unresolved = append(unresolved, a.name)
		}
	}
	b.mu.Unlock()
	if len(unresolved) == 0 {
		return
	}
	// Lab locks are taken without the bridge lock held.
	found := map[string]*VM{}
	for _, n := range unresolved {
		if obj, _ := b.lab.find(KindVM, n); obj != nil {
			found[n] = obj.(*VM)
		}
	}
	var bound []*NIC
	b.mu.Lock()
	for _, n := range b.members {
		if n.vm == nil && found[n.name] != nil {
			n.vm = found[n.name]
			bound = append(bound, n)
		}
	}
	b.mu.Unlock()
	for _, n := range bound {
		n.vm.addNIC(n)
	}
}

// Members is `bridge:members()`: member names in attach order.
func (b *Bridge) Members() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.members))
	for i, a := range b.members {
		out[i] = a.name
	}
	return out
}

// MemberVMs returns the members that resolve to a VM, in attach order;
// graph-only names are left out.
func (b *Bridge) MemberVMs() []*VM {
	b.refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*VM
	for _, a := range b.members {
		if a.vm != nil {
			out = append(out, a.vm)
		}
	}
	return out
}

// NICs returns the members' NICs in attach order.
func (b *Bridge) NICs() []*NIC {
	b.refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.members)
}

// NIC is `bridge:nic(vm)`: the member's NIC.
func (b *Bridge) NIC(x any) (*NIC, error) {
	name, err := b.attachedName("nic", x)
	if err != nil {
		return nil, err
	}
	b.refresh()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.members[indexNIC(b.members, name)], nil
}

// Close detaches every member, ends captures and the uplink and retires
// the bridge; idempotent. Later attaches fail.
func (b *Bridge) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	members := b.members
	b.members = nil
	b.closed = true
	up := b.uplink
	b.uplink = nil
	b.mu.Unlock()
	if up != nil {
		up.stop()
	}
	b.sw.Close()
	b.lab.env.net.remove(b)
	for _, n := range members {
		if n.vm != nil {
			n.vm.forgetNIC(n)
		}
	}
	return nil
}

// Closed reports whether the bridge was closed.
func (b *Bridge) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// addressing reports whether a member's guest gets an address and hosts
// entries: the bridge's mode, else only when the VM's profile names
// guest_os "linux". Profiles that name none (every profile written for
// upstream, which has no such key) get upstream's raw links.
func (b *Bridge) addressing(v *VM) bool {
	switch b.opts.Addressing {
	case AddressingAuto:
		return true
	case AddressingNone:
		return false
	}
	if v == nil {
		// Graph-only: the address stays reserved; the VM's profile
		// decides once the name resolves.
		return true
	}
	return DefaultAddressing(b.lab.env.GuestOS, v.profile) == AddressingAuto
}

// DefaultAddressing is the addressing a member of profile gets on a
// bridge created without an addressing opt: "auto" when the profile names
// guest_os "linux", else "none".
func DefaultAddressing(guestOS func(profile string) string, profile string) string {
	if guestOS != nil && guestOS(profile) == "linux" {
		return AddressingAuto
	}
	return AddressingNone
}

// Routes is `bridge:routes()`.
func (b *Bridge) Routes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.routes)
}

// Route is `bridge:route(x)`: recorded only; the first call prints a
// notice to stderr.
func (b *Bridge) Route(names []string) {
	b.mu.Lock()
	notice := !b.noticed
	b.noticed = true
	for _, n := range names {
		if !slices.Contains(b.routes, n) {
			b.routes = append(b.routes, n)
		}
	}
	b.mu.Unlock()
	if notice {
		fmt.Fprintf(os.Stderr, msgFmtRouteNotice, b.name)
	}
}
