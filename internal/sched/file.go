package sched

import (
	"context"
	"fmt"
	"time"
)

// File is a dispatched test file's account with the pool: its overhead,
// its claim and the VMs it runs. Methods are safe for concurrent use.
type File struct {
	p    *Pool
	path string

	// guarded by p.mu
	overhead  Amount
	claim     Amount // in force when claimed
	claimed   bool
	claimUsed Amount // VMs drawing from the claim
	poolVMs   Amount // VMs of an unclaimed file, held on the pool
	holds     map[*Hold]struct{}
	waits     int // parked requests + fixture gates waited on
	clock     parkedClock
	done      bool
}

// Path is the file's display path.
func (f *File) Path() string { return f.path }

// park adjusts the file's wait count and its parked clock; caller holds p.mu.
func (f *File) park(delta int) {
	before := f.waits
	f.waits += delta
	switch {
	case before == 0 && f.waits > 0:
		f.clock.since = time.Now()
	case before > 0 && f.waits == 0:
		f.clock.total += time.Since(f.clock.since)
	}
}

// Parked is how long the file has waited so far for pool capacity or for
// another file's fixture build, including a wait in progress. Watchdogs
// extend their deadlines by it (30-runtime.md B7).
func (f *File) Parked() time.Duration {
	if f == nil {
		return 0
	}
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	d := f.clock.total
	if f.waits > 0 {
		d += time.Since(f.clock.since)
	}
	return d
}

// WaitGate marks the file as waiting on a fixture build gate held by
// another file of this run, until the returned function is called. Such a
// wait counts as parked for deadlock detection and watchdogs (B6, B7).
func (f *File) WaitGate() (end func()) {
	if f == nil {
		return func() {}
	}
	p := f.p
	p.lock()
	f.park(1)
	p.checkDeadlock()
	p.unlock()
	ended := false
	return func() {
		p.lock()
		defer p.unlock()
		if !ended {
			ended = true
			f.park(-1)
		}
	}
}

// Hold is an amount a file holds for running VMs: one VM's charge, or a
// batch (lab:boot, lab:restore, …) that VM starts draw from.
type Hold struct {
	f         *File
	amt       Amount
	fromClaim bool // drawn from the file's claim, else from the pool
}

// Amount is what the hold still holds.
func (h *Hold) Amount() Amount {
	h.f.p.mu.Lock()
	defer h.f.p.mu.Unlock()
	return h.amt
}

// Release returns what the hold still holds. Safe to call more than once.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	p := h.f.p
	p.lock()
	defer p.unlock()
	h.f.releaseLocked(h)
	p.serve()
}

// releaseLocked returns h to the claim or the pool; caller holds p.mu.
func (f *File) releaseLocked(h *Hold) {
	if _, ok := f.holds[h]; !ok {
		return
	}
	delete(f.holds, h)
	p := f.p
	p.inUse = p.inUse.Sub(h.amt)
	if h.fromClaim {
		f.claimUsed = f.claimUsed.Sub(h.amt)
	} else {
		f.poolVMs = f.poolVMs.Sub(h.amt)
		p.used = p.used.Sub(h.amt)
	}
	h.amt = Amount{}
}

// take splits amt off the hold for one VM of a batch; false when the hold
// has less left.
func (h *Hold) take(amt Amount) (*Hold, bool) {
	p := h.f.p
	p.lock()
	defer p.unlock()
	if _, ok := h.f.holds[h]; !ok || !amt.Fits(h.amt) {
		return nil, false
	}
	h.amt = h.amt.Sub(amt)
	part := &Hold{f: h.f, amt: amt, fromClaim: h.fromClaim}
	h.f.holds[part] = struct{}{}
	return part, true
}

// Acquire charges amt (a VM, or the sum of a batch) to the file, named by
// what in errors (`vm `+"`a`"+`, `+"`lab:boot of 3 VMs`"+`). With a claim
// it draws from the claim and never waits; too much is an error. Without
// one it draws from the pool, parking until it fits; a request larger than
// the whole pool fails at once, and one that closes a deadlock fails with
// a *DeadlockError (30-runtime.md B2, B6).
func (f *File) Acquire(ctx context.Context, what string, amt Amount) (*Hold, error) {
	p := f.p
	p.lock()
	defer p.unlock()
	if f.done {
		return nil, fmt.Errorf("%s: the file has completed", what)
	}
	h := &Hold{f: f, amt: amt}
	if f.claimed {
		if !f.claimUsed.Add(amt).Fits(f.claim) {
			return nil, fmt.Errorf(msgClaimTooSmall, what, amt, f.claim, f.claimUsed)
		}
		f.claimUsed = f.claimUsed.Add(amt)
		p.inUse = p.inUse.Add(amt)
		h.fromClaim = true
		f.holds[h] = struct{}{}
		return h, nil
	}
	if !amt.Fits(p.cfg.Total) {
		return nil, fmt.Errorf(msgWholePool, what, amt, p.cfg.Total)
	}
	err := p.take(ctx, f, amt, func() {
		f.poolVMs = f.poolVMs.Add(amt)
		p.inUse = p.inUse.Add(amt)
		f.holds[h] = struct{}{}
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

type batchKey struct{}

// WithBatch returns a context whose VM charges (Charge) draw from h first:
// a batch reserved whole for lab:boot and its kin.
func WithBatch(ctx context.Context, h *Hold) context.Context {
	return context.WithValue(ctx, batchKey{}, h)
}

// Charge is Acquire for one VM, drawing from the context's batch (WithBatch)
// when it has room left.
func (f *File) Charge(ctx context.Context, what string, amt Amount) (*Hold, error) {
	if b, ok := ctx.Value(batchKey{}).(*Hold); ok && b != nil && b.f == f {
		if h, ok := b.take(amt); ok {
			return h, nil
		}
	}
	return f.Acquire(ctx, what, amt)
}

// Claim is the runtime provium:claim (30-runtime.md B3). The amount
// declared and reserved at dispatch is just confirmed; any other amount
// resizes the claim: the file's running pool VMs move into it, growth is
// requested first (it may park, or fail with a deadlock) and the surplus
// goes back to the pool once the new claim is in force.
func (f *File) Claim(ctx context.Context, amt Amount) error {
	p := f.p
	p.lock()
	defer p.unlock()
	if f.done {
		return fmt.Errorf("provium:claim: the file has completed")
	}
	if f.claimed && f.claim == amt {
		return nil
	}
	if !amt.Fits(p.cfg.Total) {
		return fmt.Errorf(msgWholePool, "provium:claim", amt, p.cfg.Total)
	}
	if inside := f.claimUsed.Add(f.poolVMs); !inside.Fits(amt) {
		return fmt.Errorf(msgClaimBelowVMs, amt, inside)
	}
	old := Amount{}
	if f.claimed {
		old = f.claim
	}
	vms := f.poolVMs
	held := old.Add(vms) // what the claim replaces on the pool
	if need := amt.Sub(held); !need.IsZero() {
		if err := p.take(ctx, f, need, func() {}); err != nil {
			return err
		}
	}
	// The pool now holds held+need for the file; keep exactly amt. A pool
	// VM that ended while this waited gave its share back already: take
	// it again, it is part of the claim now.
	p.used = p.used.Sub(held.Sub(amt)).Add(vms.Sub(f.poolVMs))
	p.reserved = p.reserved.Sub(old).Add(amt)
	f.claimUsed = f.claimUsed.Add(f.poolVMs)
	f.poolVMs = Amount{}
	for h := range f.holds {
		h.fromClaim = true
	}
	if f.claimed {
		p.emit(func(o Observer) { o.ClaimReleased(f.path, old) })
	}
	f.claim, f.claimed = amt, true
	p.emit(func(o Observer) { o.ClaimAcquired(f.path, amt) })
	p.serve()
	return nil
}
