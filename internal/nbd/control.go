package nbd

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Fault is a fault_inject mode of the Disk API (10-lua-api.md §15.1).
type Fault string

const (
	FaultEIORead  Fault = "eio_read"
	FaultEIOWrite Fault = "eio_write"
	FaultSlow     Fault = "slow"
)

// SlowDelay is what FaultSlow adds per operation.
const SlowDelay = 50 * time.Millisecond

// ParseFault checks a mode name.
func ParseFault(s string) (Fault, bool) {
	switch f := Fault(s); f {
	case FaultEIORead, FaultEIOWrite, FaultSlow:
		return f, true
	}
	return "", false
}

// Range is a run of sectors.
type Range struct {
	Sector uint64
	Count  uint64
}

func (r Range) overlaps(off, n uint64) bool {
	if n == 0 || r.Count == 0 {
		return false
	}
	start, end := r.Sector*SectorSize, (r.Sector+r.Count)*SectorSize
	return off < end && off+n > start
}

// Policy is a snapshot of the guest-I/O fault policy (10-lua-api.md §15.2).
type Policy struct {
	FailReads  bool
	FailWrites bool
	// FailAfter is how many more guest requests succeed before all fail;
	// nil when unset.
	FailAfter  *uint64
	FailRanges []Range
	Delay      time.Duration
}

// Control is the fault state of one disk, shared by every handle of it and
// by each Export that serves it (one per boot): fault_inject modes, which
// also gate host-side sector ops, and the guest-I/O policy. Safe for
// concurrent use.
type Control struct {
	mu     sync.Mutex
	faults map[Fault]bool
	pol    Policy
}

// NewControl returns a Control with no faults.
func NewControl() *Control { return &Control{faults: map[Fault]bool{}} }

// Inject activates a fault_inject mode.
func (c *Control) Inject(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults[f] = true
}

// ClearFaults drops every fault_inject mode (not the policy).
func (c *Control) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.faults)
}

// Has says whether mode f is active.
func (c *Control) Has(f Fault) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults[f]
}

// Faults lists the active modes, sorted.
func (c *Control) Faults() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.faults))
	for f := range c.faults {
		out = append(out, string(f))
	}
	slices.Sort(out)
	return out
}

// FailReads makes later guest reads fail with EIO.
func (c *Control) FailReads() { c.update(func(p *Policy) { p.FailReads = true }) }

// FailWrites makes later guest writes (and trims) fail with EIO.
func (c *Control) FailWrites() { c.update(func(p *Policy) { p.FailWrites = true }) }

// FailAfter lets the next n guest requests succeed, then fails all.
func (c *Control) FailAfter(n uint64) { c.update(func(p *Policy) { p.FailAfter = &n }) }

// FailRange fails guest I/O touching [sector, sector+count); ranges
// accumulate.
func (c *Control) FailRange(sector, count uint64) error {
	if count == 0 {
		return fmt.Errorf("count must be at least 1")
	}
	if sector+count < sector {
		return fmt.Errorf("sector %d + count %d overflows", sector, count)
	}
	c.update(func(p *Policy) { p.FailRanges = append(p.FailRanges, Range{sector, count}) })
	return nil
}

// SetDelay adds d to every guest request; 0 removes it.
func (c *Control) SetDelay(d time.Duration) { c.update(func(p *Policy) { p.Delay = d }) }

// ClearPolicy drops the policy (not the fault_inject modes).
func (c *Control) ClearPolicy() { c.update(func(p *Policy) { *p = Policy{} }) }

// Policy returns a copy of the policy.
func (c *Control) Policy() Policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pol
	p.FailRanges = slices.Clone(p.FailRanges)
	if p.FailAfter != nil {
		n := *p.FailAfter
		p.FailAfter = &n
	}
	return p
}

func (c *Control) update(f func(*Policy)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.pol)
}

// delay is what a guest request waits before it is judged.
func (c *Control) delay() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.pol.Delay
	if c.faults[FaultSlow] {
		d += SlowDelay
	}
	return d
}

// judge decides a guest request after its delay: true means fail it with
// EIO. It consumes one fail_after credit for reads, writes and flushes.
func (c *Control) judge(typ uint16, off, n uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.pol
	if typ == cmdRead || typ == cmdWrite || typ == cmdFlush {
		if p.FailAfter != nil {
			if *p.FailAfter == 0 {
				return true
			}
			*p.FailAfter--
		}
	}
	switch typ {
	case cmdRead:
		if p.FailReads || c.faults[FaultEIORead] {
			return true
		}
	case cmdWrite, cmdTrim:
		if p.FailWrites || (typ == cmdWrite && c.faults[FaultEIOWrite]) {
			return true
		}
	default:
		return false
	}
	for _, r := range p.FailRanges {
		if r.overlaps(off, n) {
			return true
		}
	}
	return false
}
