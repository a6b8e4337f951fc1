package sched

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// pressurePoll is how often a dispatch held back by pressure reads it
// again (30-runtime.md B5: each second).
const pressurePoll = time.Second

// Enqueue counts n more files waiting for dispatch (State.Queued).
func (p *Pool) Enqueue(n int) {
	p.lock()
	defer p.unlock()
	p.queued += n
}

// Dequeue forgets n queued files that will never be dispatched (fail-fast,
// interrupt).
func (p *Pool) Dequeue(n int) {
	p.lock()
	defer p.unlock()
	p.queued = max(0, p.queued-n)
}

// ErrHalted is Admit's error once Halt was called.
var ErrHalted = errors.New("dispatch halted")

// Halt stops all further dispatch (--fail-fast, 30-runtime.md B9): waiting
// and later Admit calls return ErrHalted. Running files go on.
func (p *Pool) Halt() {
	p.lock()
	defer p.unlock()
	p.halted = true
	p.broadcast()
}

// Admit dispatches the queue head (30-runtime.md B4): the caller calls it
// for one file at a time, in discovery order, so only the head is ever
// considered (FIFO, no backfill). It returns once the file's reservation —
// FileOverhead plus declared, the literal claim found by discovery — fits,
// no request of a running file is parked (those are served first), the -j
// cap allows and pressure does not throttle (B5), or with ctx's error. A
// declared claim larger than the pool is not reserved (the runtime call
// then fails, B2). A blocked head is reported to the Observer once per
// change of reason. The queued count drops by one either way.
func (p *Pool) Admit(ctx context.Context, path string, declared *Amount) (*File, error) {
	overhead := Amount{Memory: FileOverhead}
	reservation := overhead
	claim := declared != nil && declared.Add(overhead).Fits(p.cfg.Total)
	if claim {
		reservation = reservation.Add(*declared)
	}
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	lastReason := ""
	p.lock()
	defer p.unlock()
	defer func() { p.queued = max(0, p.queued-1) }()
	for {
		if p.halted {
			return nil, ErrHalted
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for dispatch: %w", context.Cause(ctx))
		}
		reason := p.blockedBy(reservation)
		if reason == "" {
			break
		}
		if reason != lastReason {
			lastReason = reason
			p.emit(func(o Observer) { o.FileBlocked(path, reservation, reason) })
		}
		var tick <-chan time.Time
		if reason == ReasonPSIPressure {
			if ticker == nil {
				ticker = time.NewTicker(pressurePoll)
			}
			tick = ticker.C
		}
		changed := p.changed
		p.unlock()
		select {
		case <-changed:
		case <-tick:
		case <-ctx.Done():
			p.lock()
			return nil, fmt.Errorf("waiting for dispatch: %w", context.Cause(ctx))
		}
		p.lock()
	}
	f := &File{p: p, path: path, overhead: overhead, holds: map[*Hold]struct{}{}}
	if claim {
		f.claim, f.claimed = *declared, true
	}
	p.used = p.used.Add(reservation)
	p.reserved = p.reserved.Add(reservation)
	p.files[f] = struct{}{}
	p.emit(func(o Observer) { o.FileDispatched(path, reservation) })
	if claim {
		amt := *declared
		p.emit(func(o Observer) { o.ClaimAcquired(path, amt) })
	}
	return f, nil
}

// blockedBy says why the head cannot go now ("" = it can); caller holds
// p.mu. pool_full beats psi_pressure. With no file in flight nothing
// blocks it: an empty pool admits any head, and outside pressure cannot
// stall a run (B5, beyond).
func (p *Pool) blockedBy(reservation Amount) string {
	if len(p.files) == 0 {
		return ""
	}
	if len(p.parked) > 0 || !reservation.Fits(p.free()) || (p.cfg.Jobs > 0 && len(p.files) >= p.cfg.Jobs) {
		return ReasonPoolFull
	}
	if p.cfg.PSIThreshold > 0 && p.cfg.Pressure != nil {
		if v, ok := p.cfg.Pressure(); ok && v > p.cfg.PSIThreshold {
			return ReasonPSIPressure
		}
	}
	return ""
}

// Done ends the file's account, however the file ended: any VM still
// charged, the claim and the overhead go back to the pool (claim_released
// first, so the caller's file_completed closes the file). Safe to call
// more than once.
func (f *File) Done() {
	p := f.p
	p.lock()
	defer p.unlock()
	if f.done {
		return
	}
	f.done = true
	for h := range f.holds {
		f.releaseLocked(h)
	}
	// Parked requests of this file cannot exist (its goroutine is here);
	// gate waits ended with their calls.
	p.used = p.used.Sub(f.overhead)
	p.reserved = p.reserved.Sub(f.overhead)
	if f.claimed {
		p.used = p.used.Sub(f.claim)
		p.reserved = p.reserved.Sub(f.claim)
		claim := f.claim
		p.emit(func(o Observer) { o.ClaimReleased(f.path, claim) })
	}
	delete(p.files, f)
	p.serve()
	// A file that ends may leave the others all parked.
	p.checkDeadlock()
}

type fileKey struct{}

// WithFile returns a context carrying the dispatched file: code running for
// the file (VM starts, provium:claim, watchdogs) finds its account there.
func WithFile(ctx context.Context, f *File) context.Context {
	return context.WithValue(ctx, fileKey{}, f)
}

// FromContext returns the file of ctx, or nil when there is no pool (the
// REPL, fixture subcommands, ad-hoc runs).
func FromContext(ctx context.Context) *File {
	f, _ := ctx.Value(fileKey{}).(*File)
	return f
}
