package netsim

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Switch is one bridge's L2 switch. Methods are safe for concurrent use.
type Switch struct {
	name string

	mu      sync.Mutex
	rules   *rules
	ports   map[string]*Port
	macs    map[MAC]*Port
	taps    []*Capture // bridge-wide captures
	closed  bool
	stopped chan struct{}
}

// New returns a switch named name (for messages) whose loss draws derive
// from seed.
func New(name string, seed uint64) *Switch {
	return &Switch{name: name, rules: newRules(seed), ports: map[string]*Port{}, macs: map[MAC]*Port{}, stopped: make(chan struct{})}
}

// Name is the switch's name.
func (s *Switch) Name() string { return s.name }

// ErrClosed is returned by operations on a closed switch.
var ErrClosed = errors.New("netsim: switch is closed")

// AddPort creates the port of a member; it carries frames once its QEMU
// connects to the socket given to Port.Listen. A port that exists already
// is returned as is.
func (s *Switch) AddPort(name string) (*Port, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if p := s.ports[name]; p != nil {
		return p, nil
	}
	p := newPort(s, name, false)
	s.ports[name] = p
	go p.writeLoop()
	return p, nil
}

// AddPeer adds a port whose other end is an in-process peer speaking the
// same framing over conn (the uplink). exempt ports are not cut off by
// isolation. The switch owns conn from now on.
func (s *Switch) AddPeer(name string, conn net.Conn, exempt bool) (*Port, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		conn.Close()
		return nil, ErrClosed
	}
	if s.ports[name] != nil {
		conn.Close()
		return nil, fmt.Errorf("netsim: bridge %s: port %s exists", s.name, name)
	}
	p := newPort(s, name, exempt)
	s.ports[name] = p
	go p.writeLoop()
	p.serve(conn)
	return p, nil
}

// Port returns the port of name, or nil.
func (s *Switch) Port(name string) *Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ports[name]
}

// RemovePort closes a member's port and forgets every rule naming it.
func (s *Switch) RemovePort(name string) {
	s.mu.Lock()
	p := s.ports[name]
	delete(s.ports, name)
	for m, q := range s.macs {
		if q == p {
			delete(s.macs, m)
		}
	}
	s.rules.forget(name)
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// Close closes every port and ends every capture; idempotent.
func (s *Switch) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ports := s.ports
	s.ports = map[string]*Port{}
	taps := s.taps
	s.taps = nil
	s.mu.Unlock()
	for _, p := range ports {
		p.close()
		for _, c := range p.taps() {
			c.end()
		}
	}
	for _, c := range taps {
		c.end()
	}
	close(s.stopped)
}

// Ports lists the port names, sorted.
func (s *Switch) Ports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ports))
	for n := range s.ports {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// copyOut is one frame copy bound for a port.
type copyOut struct {
	to *Port
	at time.Time
}

// forward handles one frame accepted from port in: it learns the source,
// picks destinations and runs every copy through the rules.
func (s *Switch) forward(in *Port, f []byte, now time.Time) {
	dst := dstMAC(f)
	var outs []copyOut
	var dropped []*Port
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	taps := s.taps
	if src := srcMAC(f); !src.group() {
		s.macs[src] = in
	}
	var targets []*Port
	if q, ok := s.macs[dst]; ok && !dst.group() {
		if q != in {
			targets = []*Port{q}
		}
	} else {
		for _, q := range s.ports {
			if q != in {
				targets = append(targets, q)
			}
		}
	}
	for _, q := range targets {
		if s.rules.linkDown[q.name] {
			continue
		}
		at, v := s.rules.decide(in.name, q.name, in.exempt || q.exempt, len(f), now)
		if v != deliver {
			dropped = append(dropped, q)
			continue
		}
		outs = append(outs, copyOut{q, at})
	}
	s.mu.Unlock()
	for _, c := range taps {
		c.write(f, now)
	}
	for _, q := range dropped {
		q.ctr.dropped.Add(1)
	}
	for _, o := range outs {
		o.to.enqueue(f, o.at)
	}
}

// linkUp reports a port's link state.
func (s *Switch) linkUp(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.rules.linkDown[name]
}

// SetLink sets a member's link state: a down port passes nothing, either
// way. It applies to a port created later too.
func (s *Switch) SetLink(name string, up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up {
		delete(s.rules.linkDown, name)
	} else {
		s.rules.linkDown[name] = true
	}
}

// LinkUp reports whether a member's link is up.
func (s *Switch) LinkUp(name string) bool { return s.linkUp(name) }

// Partition drops frames a->b, and b->a unless directional.
func (s *Switch) Partition(a, b string, directional bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules.parts[Pair{a, b}] = true
	if !directional {
		s.rules.parts[Pair{b, a}] = true
	}
}

// Unpartition removes the a->b drop, and b->a unless directional.
func (s *Switch) Unpartition(a, b string, directional bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rules.parts, Pair{a, b})
	if !directional {
		delete(s.rules.parts, Pair{b, a})
	}
}

// PartitionAll drops every ordered pair of names.
func (s *Switch) PartitionAll(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range names {
		for _, b := range names {
			if a != b {
				s.rules.parts[Pair{a, b}] = true
			}
		}
	}
}

// RestoreAll clears every partition.
func (s *Switch) RestoreAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules.parts = map[Pair]bool{}
}

// IsPartitioned reports whether a->b is dropped.
func (s *Switch) IsPartitioned(a, b string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.parts[Pair{a, b}]
}

// SetIsolated isolates a member from every other member (not the uplink).
func (s *Switch) SetIsolated(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.rules.isolated[name] = true
	} else {
		delete(s.rules.isolated, name)
	}
}

// IsIsolated reports whether a member is isolated.
func (s *Switch) IsIsolated(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.isolated[name]
}

// Whole is the whole-bridge impairment.
func (s *Switch) Whole() Impairment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.whole
}

// UpdateWhole changes the whole-bridge impairment through fn.
func (s *Switch) UpdateWhole(fn func(*Impairment)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.rules.whole
	fn(&i)
	s.rules.setWhole(i)
}

// UpdatePair changes the impairment of exactly the (from, to) pair.
func (s *Switch) UpdatePair(from, to string, fn func(*Impairment)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Pair{from, to}
	i := s.rules.pairs[p]
	fn(&i)
	s.rules.setPair(p, i)
}

// PairImpairment is the directional impairment of (from, to).
func (s *Switch) PairImpairment(from, to string) Impairment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.pairs[Pair{from, to}]
}

// Reset clears partitions, impairments and isolation; link states stay.
func (s *Switch) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules.clear()
}

// State returns the decision state (lab.json).
func (s *Switch) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.state()
}

// Load replaces the decision state (lab restore).
func (s *Switch) Load(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules.load(st)
}

// Seed is the loss seed.
func (s *Switch) Seed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rules.seed
}

// Capture starts a bridge-wide capture: every frame once, as accepted from
// a port, before any rule.
func (s *Switch) Capture() (*Capture, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	c := newCapture()
	s.taps = append(s.taps, c)
	return c, nil
}

// dropTap forgets an ended capture.
func (s *Switch) dropTap(c *Capture) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taps = slices.DeleteFunc(s.taps, func(x *Capture) bool { return x == c })
}
