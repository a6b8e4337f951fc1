package netsim

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"time"
)

// Impairment is the latency, loss and bandwidth of one rule; zero values
// are "off".
type Impairment struct {
	LatencyMs    float64 `json:"latency_ms"`
	DropPct      float64 `json:"drop_pct"`
	BandwidthBps uint64  `json:"bandwidth_bps"`
}

func (i Impairment) zero() bool { return i == Impairment{} }

// Pair is an ordered (from, to) pair of port names.
type Pair struct{ From, To string }

// PairImpairment is one directional rule.
type PairImpairment struct {
	From string `json:"from"`
	To   string `json:"to"`
	Impairment
}

// State is everything a switch decides frames by: what lab.json records
// and a restore puts back. Lists are sorted so equal states compare equal.
type State struct {
	Seed       uint64           `json:"seed"`
	Whole      Impairment       `json:"impairment"`
	Pairs      []PairImpairment `json:"pair_impairments"`
	Partitions []Pair           `json:"partitions"` // each an a->b drop
	Isolated   []string         `json:"isolated"`
	LinkDown   []string         `json:"link_down"`
}

// lossKind tells the two independent loss draws of one pair apart.
type lossKind byte

const (
	lossWhole lossKind = 'w'
	lossPair  lossKind = 'p'
)

type lossKey struct {
	kind lossKind
	pair Pair
}

// rules is the mutable decision state; the switch guards it with its lock.
type rules struct {
	seed     uint64
	whole    Impairment
	pairs    map[Pair]Impairment
	parts    map[Pair]bool
	isolated map[string]bool
	linkDown map[string]bool

	// Loss draws come from one stream per (rule, pair), so the drops of a
	// pair depend only on the seed and that pair's frames, not on other
	// traffic. Setting a loss rule restarts its streams.
	rngs map[lossKey]*rand.Rand
	// Buckets: the shared whole-bridge one and one per pair; recreated
	// when their rate changes.
	wholeBucket *bucket
	pairBuckets map[Pair]*bucket
}

func newRules(seed uint64) *rules {
	return &rules{
		seed: seed, pairs: map[Pair]Impairment{}, parts: map[Pair]bool{},
		isolated: map[string]bool{}, linkDown: map[string]bool{},
		rngs: map[lossKey]*rand.Rand{}, pairBuckets: map[Pair]*bucket{},
	}
}

// rng is the loss stream of a (rule, pair), derived from the seed.
func (r *rules) rng(k lossKey) *rand.Rand {
	if g := r.rngs[k]; g != nil {
		return g
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], r.seed)
	h.Write(b[:])
	h.Write([]byte{byte(k.kind)})
	io.WriteString(h, k.pair.From+"\x00"+k.pair.To)
	g := rand.New(rand.NewPCG(r.seed, h.Sum64()))
	r.rngs[k] = g
	return g
}

// dropLoss draws whether a frame is lost to a rule of p percent.
func (r *rules) dropLoss(k lossKey, pct float64) bool {
	if pct <= 0 {
		return false
	}
	if pct >= 100 {
		return true
	}
	return r.rng(k).Float64()*100 < pct
}

// resetLoss restarts the loss streams of one kind (all pairs when pair is
// nil).
func (r *rules) resetLoss(kind lossKind, pair *Pair) {
	for k := range r.rngs {
		if k.kind == kind && (pair == nil || k.pair == *pair) {
			delete(r.rngs, k)
		}
	}
}

// verdict is the fate of one frame copy.
type verdict int

const (
	deliver verdict = iota
	dropRule
)

// decide applies the rules to one frame copy of size bytes from -> to at
// now, in the spec's order; it returns when to deliver it. exempt marks the
// uplink, which isolation does not cut off.
func (r *rules) decide(from, to string, exempt bool, size int, now time.Time) (time.Time, verdict) {
	p := Pair{from, to}
	if r.parts[p] {
		return now, dropRule
	}
	if !exempt && (r.isolated[from] || r.isolated[to]) {
		return now, dropRule
	}
	pi := r.pairs[p]
	if r.dropLoss(lossKey{lossWhole, p}, r.whole.DropPct) || r.dropLoss(lossKey{lossPair, p}, pi.DropPct) {
		return now, dropRule
	}
	at := now
	if size <= smallFrame && (r.whole.BandwidthBps > 0 || pi.BandwidthBps > 0) {
		// Small frames (TCP ACKs, ARP) pay their tokens but do not queue
		// behind bulk data: an ACK stuck behind a second of the other
		// direction's data stalls the sender, and TCP then falls far below
		// the rate (measured on TCG guests with a shared bucket).
		if r.wholeBucket != nil {
			r.wholeBucket.charge(size, now)
		}
		if pb := r.pairBucket(p, pi.BandwidthBps); pb != nil {
			pb.charge(size, now)
		}
	} else if r.whole.BandwidthBps > 0 || pi.BandwidthBps > 0 {
		// Check both buckets before charging either, so a frame the pair's
		// queue refuses does not use the bridge's tokens.
		wb, pb := r.wholeBucket, r.pairBucket(p, pi.BandwidthBps)
		t := now
		if wb != nil {
			var ok bool
			if t, ok = wb.peek(size, now); !ok {
				return now, dropRule
			}
		}
		if pb != nil {
			if _, ok := pb.peek(size, t); !ok {
				return now, dropRule
			}
		}
		if wb != nil {
			t = wb.take(size, now)
		}
		if pb != nil {
			t = pb.take(size, t)
		}
		at = t
	}
	if ms := r.whole.LatencyMs + pi.LatencyMs; ms > 0 {
		at = at.Add(time.Duration(ms * float64(time.Millisecond)))
	}
	return at, deliver
}

func (r *rules) pairBucket(p Pair, bps uint64) *bucket {
	if bps == 0 {
		return nil
	}
	b := r.pairBuckets[p]
	if b == nil || b.bps != bps {
		b = newBucket(bps)
		r.pairBuckets[p] = b
	}
	return b
}

func (r *rules) setWhole(i Impairment) {
	if i.DropPct != r.whole.DropPct || i.DropPct > 0 {
		r.resetLoss(lossWhole, nil)
	}
	if i.BandwidthBps != r.whole.BandwidthBps {
		r.wholeBucket = nil
		if i.BandwidthBps > 0 {
			r.wholeBucket = newBucket(i.BandwidthBps)
		}
	}
	r.whole = i
}

func (r *rules) setPair(p Pair, i Impairment) {
	r.resetLoss(lossPair, &p)
	if i.zero() {
		delete(r.pairs, p)
	} else {
		r.pairs[p] = i
	}
	if b := r.pairBuckets[p]; b != nil && b.bps != i.BandwidthBps {
		delete(r.pairBuckets, p)
	}
}

// clear drops partitions, impairments and isolation (bridge:reset()).
func (r *rules) clear() {
	r.setWhole(Impairment{})
	r.pairs = map[Pair]Impairment{}
	r.parts = map[Pair]bool{}
	r.isolated = map[string]bool{}
	r.rngs = map[lossKey]*rand.Rand{}
	r.pairBuckets = map[Pair]*bucket{}
}

// forget removes every rule naming a port (bridge:detach()).
func (r *rules) forget(name string) {
	for p := range r.pairs {
		if p.From == name || p.To == name {
			delete(r.pairs, p)
			delete(r.pairBuckets, p)
		}
	}
	for p := range r.parts {
		if p.From == name || p.To == name {
			delete(r.parts, p)
		}
	}
	delete(r.isolated, name)
	delete(r.linkDown, name)
	for k := range r.rngs {
		if k.pair.From == name || k.pair.To == name {
			delete(r.rngs, k)
		}
	}
}

func (r *rules) state() State {
	s := State{Seed: r.seed, Whole: r.whole, Pairs: []PairImpairment{}, Partitions: []Pair{}, Isolated: []string{}, LinkDown: []string{}}
	for p, i := range r.pairs {
		s.Pairs = append(s.Pairs, PairImpairment{From: p.From, To: p.To, Impairment: i})
	}
	slices.SortFunc(s.Pairs, func(a, b PairImpairment) int { return comparePair(Pair{a.From, a.To}, Pair{b.From, b.To}) })
	for p := range r.parts {
		s.Partitions = append(s.Partitions, p)
	}
	slices.SortFunc(s.Partitions, comparePair)
	s.Isolated = sortedSet(r.isolated)
	s.LinkDown = sortedSet(r.linkDown)
	return s
}

func (r *rules) load(s State) {
	r.seed = s.Seed
	r.clear()
	r.setWhole(s.Whole)
	for _, p := range s.Pairs {
		r.setPair(Pair{p.From, p.To}, p.Impairment)
	}
	for _, p := range s.Partitions {
		r.parts[p] = true
	}
	for _, n := range s.Isolated {
		r.isolated[n] = true
	}
	r.linkDown = map[string]bool{}
	for _, n := range s.LinkDown {
		r.linkDown[n] = true
	}
}

func comparePair(a, b Pair) int {
	if a.From != b.From {
		if a.From < b.From {
			return -1
		}
		return 1
	}
	switch {
	case a.To < b.To:
		return -1
	case a.To > b.To:
		return 1
	}
	return 0
}

func sortedSet(m map[string]bool) []string {
	out := []string{}
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
