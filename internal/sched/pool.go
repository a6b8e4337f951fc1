package sched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Observer receives the scheduler's events (30-runtime.md C2). Calls are
// made outside the pool's lock, one at a time, in the order things
// happened. Any method may be a no-op.
type Observer interface {
	FileBlocked(path string, waitingFor Amount, reason string)
	FileDispatched(path string, reservation Amount)
	ClaimAcquired(path string, amount Amount)
	ClaimReleased(path string, amount Amount)
}

// Config configures a Pool.
type Config struct {
	Total Amount
	// Jobs caps the files running at once on top of the pool (-j); 0 = none.
	Jobs int
	// PSIThreshold throttles new dispatch while the pressure exceeds it
	// (percent of `some avg10`); 0 disables throttling.
	PSIThreshold float64
	// Pressure reads the host's pressure; nil means no throttling.
	Pressure func() (avg10 float64, available bool)
	// Observer, when set, receives dispatch and claim events.
	Observer Observer
}

// Pool is a run's budget of memory and vCPUs and everything charged to it.
// It is safe for concurrent use.
type Pool struct {
	cfg Config

	mu       sync.Mutex
	used     Amount // held on the pool: overheads, claims, unclaimed VMs
	reserved Amount // overheads and claims (part of used)
	inUse    Amount // running VMs, in claims or not
	files    map[*File]struct{}
	parked   []*request // requests of running files, in arrival order
	queued   int        // files waiting for dispatch
	halted   bool       // Halt was called: nothing more dispatches
	changed  chan struct{}
	pending  []func() // observer calls to make after unlocking

	emitMu sync.Mutex // keeps observer calls in order
}

// New makes an empty pool.
func New(cfg Config) *Pool {
	return &Pool{cfg: cfg, files: map[*File]struct{}{}, changed: make(chan struct{})}
}

// Total is the pool's size.
func (p *Pool) Total() Amount { return p.cfg.Total }

// State is a snapshot of the pool's numbers, for the event stream's
// pool_state and for diagnostics.
type State struct {
	Total     Amount
	Used      Amount // held on the pool (Reserved + VMs of unclaimed files)
	Available Amount // Total - Used
	Reserved  Amount // per-file overheads and claims
	InUse     Amount // running VMs (inside claims or not) and pending batch reservations
	Running   int    // dispatched files not yet completed
	Queued    int    // files not yet dispatched
	Parked    int    // requests of running files waiting for capacity
}

// State returns the pool's current numbers.
func (p *Pool) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return State{
		Total: p.cfg.Total, Used: p.used, Available: p.cfg.Total.Sub(p.used),
		Reserved: p.reserved, InUse: p.inUse,
		Running: len(p.files), Queued: p.queued, Parked: len(p.parked),
	}
}

func (p *Pool) lock() { p.mu.Lock() }

// unlock releases the lock, then makes the observer calls queued under it.
func (p *Pool) unlock() {
	ev := p.pending
	p.pending = nil
	if len(ev) == 0 {
		p.mu.Unlock()
		return
	}
	p.emitMu.Lock()
	p.mu.Unlock()
	defer p.emitMu.Unlock()
	for _, f := range ev {
		f()
	}
}

// emit queues an observer call; caller holds p.mu.
func (p *Pool) emit(f func(o Observer)) {
	if o := p.cfg.Observer; o != nil {
		p.pending = append(p.pending, func() { f(o) })
	}
}

// broadcast wakes everything waiting for a change; caller holds p.mu.
func (p *Pool) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// free is what the pool has left; caller holds p.mu.
func (p *Pool) free() Amount { return p.cfg.Total.Sub(p.used) }

// request is a file's wait for pool capacity.
type request struct {
	f     *File
	need  Amount
	grant func() // applies the grant; caller holds p.mu
	done  chan error
}

// take asks the pool for need on behalf of f: granted at once when it
// fits, else parked until it fits (parked requests are served in arrival
// order, each as soon as it fits: B4), ctx ends, or the park closes a
// deadlock (B6). grant runs under the
// lock when need is added to the pool. Caller holds p.mu; it is released
// while parked and held again on return.
func (p *Pool) take(ctx context.Context, f *File, need Amount, grant func()) error {
	if need.Fits(p.free()) {
		p.used = p.used.Add(need)
		grant()
		return nil
	}
	r := &request{f: f, need: need, grant: grant, done: make(chan error, 1)}
	p.parked = append(p.parked, r)
	f.park(1)
	p.checkDeadlock()
	p.unlock()
	select {
	case err := <-r.done:
		p.lock()
		return err
	case <-ctx.Done():
	}
	p.lock()
	select {
	case err := <-r.done: // decided meanwhile
		if err == nil {
			return nil // granted: the caller owns it and releases it as usual
		}
		return err
	default:
	}
	p.unpark(r)
	return fmt.Errorf("waiting for pool capacity: %w", context.Cause(ctx))
}

// unpark removes r from the parked list; caller holds p.mu.
func (p *Pool) unpark(r *request) {
	for i, x := range p.parked {
		if x == r {
			p.parked = append(p.parked[:i], p.parked[i+1:]...)
			r.f.park(-1)
			p.broadcast() // the dispatcher may have waited on it
			return
		}
	}
}

// serve grants parked requests that fit, in arrival order, and wakes the
// dispatcher; caller holds p.mu. Call after anything is released.
func (p *Pool) serve() {
	for i := 0; i < len(p.parked); {
		r := p.parked[i]
		if !r.need.Fits(p.free()) {
			i++
			continue
		}
		p.parked = append(p.parked[:i], p.parked[i+1:]...)
		r.f.park(-1)
		p.used = p.used.Add(r.need)
		r.grant()
		r.done <- nil
	}
	p.broadcast()
}

// checkDeadlock applies B6: when every running file is parked (on the pool
// or on another file's fixture build) and no parked request fits, the
// newest parked request — the one closing the cycle — fails. Caller holds
// p.mu.
func (p *Pool) checkDeadlock() {
	if len(p.parked) == 0 || len(p.files) == 0 {
		return
	}
	for f := range p.files {
		if f.waits == 0 {
			return
		}
	}
	free := p.free()
	for _, r := range p.parked {
		if r.need.Fits(free) {
			return
		}
	}
	r := p.parked[len(p.parked)-1]
	err := &DeadlockError{msg: fmt.Sprintf(msgDeadlock, len(p.files), p.used, p.cfg.Total, free, len(p.parked), r.need)}
	p.unpark(r)
	r.done <- err
}

// DeadlockError is the B6 failure of the request that closed a cycle.
type DeadlockError struct{ msg string }

func (e *DeadlockError) Error() string { return e.msg }

// IsDeadlock reports whether err is (or wraps) a pool deadlock.
func IsDeadlock(err error) bool {
	var d *DeadlockError
	return errors.As(err, &d)
}

// parkedClock accumulates the time a file spends parked.
type parkedClock struct {
	total time.Duration
	since time.Time
}
