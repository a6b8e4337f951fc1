package lab

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Barrier error texts.
const (
	errFmtBarrierTimeout  = "lab:barrier: `%s` timed out after %s (%d/%d arrived)"
	errFmtBarrierCount    = "lab:barrier: count must be an integer >= 1 (got %d)"
	errFmtBarrierMismatch = "lab:barrier: `%s` was opened for %d arrivals, this call asks for %d"
)

// barriers holds one lab's open barrier rounds by name (§3.2: per scope and
// name; barriers never walk parents).
type barriers struct {
	mu     sync.Mutex
	rounds map[string]*round
}

func newBarriers() *barriers { return &barriers{rounds: make(map[string]*round)} }

// round is one use of a barrier name, from its first arrival to its opening.
type round struct {
	name    string
	count   int
	arrived int
	opened  bool
	open    chan struct{} // closed when the round opens
}

// Arrival is one caller's place in a barrier round.
type Arrival struct {
	b      *barriers
	r      *round
	opened bool // this arrival opened the round
	left   bool // withdrawn after a timeout
}

// Arrive is `lab:barrier(name, count)` without the wait: it counts one arrival.
// The count-th arrival opens the round (Opened reports it) and frees the name
// for a new round. Other arrivals wait with Wait, or watch Done when the
// caller must not block (a Lua coroutine yields instead).
func (l *Lab) Arrive(name string, count int) (*Arrival, error) {
	if count < 1 {
		return nil, fmt.Errorf(errFmtBarrierCount, count)
	}
	bs := l.barrier
	bs.mu.Lock()
	defer bs.mu.Unlock()
	r := bs.rounds[name]
	if r == nil {
		r = &round{name: name, count: count, open: make(chan struct{})}
		bs.rounds[name] = r
	} else if r.count != count {
		return nil, fmt.Errorf(errFmtBarrierMismatch, name, r.count, count)
	}
	r.arrived++
	a := &Arrival{b: bs, r: r}
	if r.arrived == r.count {
		r.opened = true
		close(r.open)
		delete(bs.rounds, name)
		a.opened = true
	}
	return a, nil
}

// Opened reports whether this arrival was the one that opened the round.
func (a *Arrival) Opened() bool { return a.opened }

// Done is closed when the round opens.
func (a *Arrival) Done() <-chan struct{} { return a.r.open }

// Wait blocks until the round opens, ctx ends or timeout passes (timeout 0:
// check once). On timeout the arrival is withdrawn, so the round's count stays
// true to the callers still waiting, and the spec's timeout error is returned.
func (a *Arrival) Wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-a.r.open:
		return nil
	default:
	}
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-a.r.open:
			return nil
		case <-ctx.Done():
			if err := a.Abandon(timeout); err != nil {
				return fmt.Errorf("lab:barrier: `%s`: %w", a.r.name, ctx.Err())
			}
			return nil
		case <-timer.C:
		}
	}
	return a.Abandon(timeout)
}

// Abandon withdraws a waiting arrival after waiting for `waited` and returns
// the timeout error; it returns nil when the round opened first. The Lua layer
// calls it when a yielded coroutine's deadline passes.
func (a *Arrival) Abandon(waited time.Duration) error {
	bs := a.b
	bs.mu.Lock()
	defer bs.mu.Unlock()
	r := a.r
	if r.opened {
		return nil
	}
	k := r.arrived
	if !a.left {
		a.left = true
		r.arrived--
		if r.arrived == 0 && bs.rounds[r.name] == r {
			delete(bs.rounds, r.name) // nobody waits: the name starts afresh
		}
	}
	return fmt.Errorf(errFmtBarrierTimeout, r.name, formatSeconds(waited), k, r.count)
}

// formatSeconds renders a duration as Lua prints seconds: 60s, 0.5s.
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) + "s"
}
