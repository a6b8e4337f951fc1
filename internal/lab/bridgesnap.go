package lab

import (
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/provium/provium/internal/netsim"
)

// record renders the bridge for lab.json; rel is its lab's path relative
// to the snapshotted lab.
func (b *Bridge) record(rel string) BridgeRecord {
	name := func(n string) string { return joinPath(rel, n) }
	st := b.sw.State()
	seed := st.Seed
	rec := BridgeRecord{
		Name: joinPath(rel, b.name), Subnet: b.subnet.String(), Addressing: b.opts.Addressing,
		Members: []string{}, Addresses: map[string]string{}, MACs: map[string]string{},
		Impairment: st.Whole, PairImpairments: []PairRecord{}, Partitions: []PartitionRecord{},
		Isolated: []string{}, LinkDown: []string{}, Routes: b.Routes(), Seed: &seed,
	}
	b.mu.Lock()
	for _, n := range b.members {
		rec.Members = append(rec.Members, name(n.name))
		if n.addr.IsValid() {
			rec.Addresses[name(n.name)] = n.addr.String()
		}
		rec.MACs[name(n.name)] = n.mac.String()
	}
	rec.Uplink = b.uplink != nil
	b.mu.Unlock()
	for _, p := range st.Pairs {
		rec.PairImpairments = append(rec.PairImpairments, PairRecord{From: name(p.From), To: name(p.To), Impairment: p.Impairment})
	}
	for _, p := range st.Partitions {
		// A symmetric partition is recorded once, as written.
		back := netsim.Pair{From: p.To, To: p.From}
		if slices.Contains(st.Partitions, back) {
			if p.From < p.To {
				rec.Partitions = append(rec.Partitions, PartitionRecord{A: name(p.From), B: name(p.To)})
			}
			continue
		}
		rec.Partitions = append(rec.Partitions, PartitionRecord{A: name(p.From), B: name(p.To), Directional: true})
	}
	for _, n := range st.Isolated {
		rec.Isolated = append(rec.Isolated, name(n))
	}
	for _, n := range st.LinkDown {
		rec.LinkDown = append(rec.LinkDown, name(n))
	}
	if rec.Routes == nil {
		rec.Routes = []string{}
	}
	return rec
}

// restoreRecord sets the bridge to a recorded state: exactly the recorded
// members (with their addresses and MACs), rules, routes and uplink.
// Members outside dir (the bridge's lab) are dropped with their rules.
func (b *Bridge) restoreRecord(ctx context.Context, dir string, rec BridgeRecord) error {
	local := func(n string) (string, bool) {
		d, base := splitRel(n)
		return base, d == dir
	}
	var want []string
	for _, m := range rec.Members {
		if n, ok := local(m); ok {
			want = append(want, n)
		}
	}
	var errs []error
	for _, m := range b.Members() {
		if !slices.Contains(want, m) {
			errs = append(errs, b.Detach(ctx, m))
		}
	}
	// Identities first, so that an attach below hot-plugs nothing with a
	// fresh MAC only to change it again.
	b.mu.Lock()
	for _, n := range b.members {
		b.setIdentityLocked(n, rec, dir)
	}
	b.mu.Unlock()
	targets := make([]any, len(want))
	for i, n := range want {
		targets[i] = n
	}
	if err := b.attachWith(ctx, targets, func(n *NIC) { b.setIdentityLocked(n, rec, dir) }); err != nil {
		errs = append(errs, err)
	}
	st := netsim.State{Seed: b.Seed()}
	if rec.Seed != nil {
		st.Seed = *rec.Seed
	}
	st.Whole = rec.Impairment
	for _, p := range rec.PairImpairments {
		f, ok1 := local(p.From)
		t, ok2 := local(p.To)
		if ok1 && ok2 {
			st.Pairs = append(st.Pairs, netsim.PairImpairment{From: f, To: t, Impairment: p.Impairment})
		}
	}
	for _, p := range rec.Partitions {
		a, ok1 := local(p.A)
		c, ok2 := local(p.B)
		if !ok1 || !ok2 {
			continue
		}
		st.Partitions = append(st.Partitions, netsim.Pair{From: a, To: c})
		if !p.Directional {
			st.Partitions = append(st.Partitions, netsim.Pair{From: c, To: a})
		}
	}
	for _, n := range rec.Isolated {
		if m, ok := local(n); ok {
			st.Isolated = append(st.Isolated, m)
		}
	}
	for _, n := range rec.LinkDown {
		if m, ok := local(n); ok {
			st.LinkDown = append(st.LinkDown, m)
		}
	}
	b.sw.Load(st)
	b.mu.Lock()
	b.routes = slices.Clone(rec.Routes)
	b.mu.Unlock()
	if rec.Uplink {
		errs = append(errs, b.EnableUplink(ctx))
	} else {
		errs = append(errs, b.DisableUplink(ctx))
	}
	return errors.Join(errs...)
}

// setIdentityLocked gives n its recorded address and MAC. Caller holds b.mu.
func (b *Bridge) setIdentityLocked(n *NIC, rec BridgeRecord, dir string) {
	key := joinPath(dir, n.name)
	if a, err := netip.ParseAddr(rec.Addresses[key]); err == nil {
		n.addr = a
	}
	if m, err := netsim.ParseMAC(rec.MACs[key]); err == nil {
		n.mac = m
	}
}

// nicRecords lists the VM's NICs for lab.json.
func (v *VM) nicRecords() []any {
	out := []any{}
	for _, n := range v.NICs() {
		b := n.bridge
		b.mu.Lock()
		r := NICRecord{Bridge: joinPath(b.lab.Path(), b.name), MAC: n.mac.String()}
		if n.addr.IsValid() {
			r.Address = n.addr.String()
		}
		b.mu.Unlock()
		out = append(out, r)
	}
	return out
}
