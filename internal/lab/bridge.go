package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
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
)

// maxBridgePrefix keeps room for the gateway (.1) and at least one VM.
const maxBridgePrefix = 30

// BridgeOpts are `lab:bridge(name, opts)`'s options. Zero values mean "the
// default" (a /24 unique in the run; a seed derived from the run seed).
type BridgeOpts struct {
	Subnet netip.Prefix // masked; invalid (zero) when not given
	Seed   *uint64      // loss RNG seed (the Lua int's bits)
}

// ParseBridgeOpts validates a `{subnet=, seed=}` table converted from Lua.
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
		default:
			return BridgeOpts{}, fmt.Errorf(errFmtBridgeOptKey, k)
		}
	}
	return o, nil
}

// Equal reports whether two option sets ask for the same bridge.
func (o BridgeOpts) Equal(p BridgeOpts) bool {
	if o.Subnet != p.Subnet {
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
	return "subnet=" + subnet + ", seed=" + seed
}

// attachment is one bridge member. vm is nil while the member is a name that
// no VM in the bridge's lab chain answers to yet (graph-only).
type attachment struct {
	name string
	vm   *VM
}

// Bridge is a virtual L2 network in the lab graph: its name, options and
// members in attach order. The switch that realises it comes later.
type Bridge struct {
	name string
	lab  *Lab // the creating lab: names attach through it and its parents
	opts BridgeOpts
	// created is the creation sequence number within the file (Lab.created).
	created uint64

	mu      sync.Mutex
	members []attachment
	closed  bool
}

func newBridge(l *Lab, name string, opts BridgeOpts) *Bridge {
	return &Bridge{name: name, lab: l, opts: opts, created: l.created.Add(1)}
}

func (b *Bridge) memberKind() MemberKind { return KindBridge }

// Name is the bridge's name.
func (b *Bridge) Name() string { return b.name }

// Lab is the lab that created the bridge.
func (b *Bridge) Lab() *Lab { return b.lab }

// Opts are the options the bridge was created with.
func (b *Bridge) Opts() BridgeOpts { return b.opts }

// target is an attach/detach argument after type checking.
type target struct {
	name string
	vm   *VM // nil: a name that resolves to no VM (yet)
}

// resolveTarget checks one attach/detach argument: a VM, or a VM name looked
// up through the bridge's lab and its parents.
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

// Attach adds members in order: each target is a *VM or a VM name (resolved
// through the bridge's lab chain; graph-only until such a VM exists). All
// targets are checked before any is added; attaching a member again is a
// no-op.
func (b *Bridge) Attach(targets ...any) error {
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
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf(errFmtBridgeClosed, "attach", b.name)
	}
	// Validate against current members and earlier targets of this call
	// without changing anything.
	pending := append([]attachment(nil), b.members...)
	for _, t := range resolved {
		i := indexAttachment(pending, t.name)
		switch {
		case i < 0:
			pending = append(pending, attachment(t))
		case pending[i].vm == nil || t.vm == nil || pending[i].vm == t.vm:
			if pending[i].vm == nil {
				pending[i].vm = t.vm
			}
		default:
			return fmt.Errorf(errFmtBridgeOtherVM, t.name, b.name)
		}
	}
	b.members = pending
	return nil
}

// Detach removes a member (a *VM or a name); a non-member is a no-op.
func (b *Bridge) Detach(x any) error {
	t, err := b.resolveTarget("detach", x)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := indexAttachment(b.members, t.name)
	if i < 0 {
		return nil
	}
	if m := b.members[i]; m.vm != nil && t.vm != nil && m.vm != t.vm {
		return nil // a different VM of that name is the member; t is not
	}
	b.members = append(b.members[:i], b.members[i+1:]...)
	return nil
}

func indexAttachment(list []attachment, name string) int {
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
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.members {
		if b.members[i].vm == nil {
			b.members[i].vm = found[b.members[i].name]
		}
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

// Close detaches every member and retires the bridge; idempotent. Later
// attaches fail.
func (b *Bridge) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.members = nil
	b.closed = true
	return nil
}
