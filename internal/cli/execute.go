package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"time"

	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
	"github.com/provium/provium/internal/sched"
)

// msgNotRunFailFast is the chunk error of files --fail-fast kept from
// starting (20-cli-config.md §3.6).
const msgNotRunFailFast = "not run (--fail-fast)"

// execution says how executeFiles runs and reports files.
type execution struct {
	run  FileRunner
	opts *runner.Options
	// pool schedules the files (30-runtime.md B4); nil means a pool that
	// only caps the files at once at limit.
	pool     *sched.Pool
	limit    int  // files at once without a pool, ≥ 1
	failFast bool // stop dispatching after the first non-passing file
	// declared finds a file's literal claim (nil: none).
	declared func(f discover.File) *sched.Amount
	props    map[string]string
	// report receives each outcome in discovery order; dispatched is false
	// for files that never started.
	report  func(f *result.File, dispatched bool) error
	started func()
	// stream, when set, hears dispatch, blocking and completion of each
	// file (the event stream).
	stream *runStream
}

// executeFiles dispatches files through the pool — FIFO, each when its
// reservation fits (30-runtime.md B4) — one goroutine per file, and hands
// each outcome to ex.report in discovery order: a finished file waits for
// the earlier ones. When ctx is cancelled nothing new starts; files never
// started are left out of the result. It returns the outcomes in discovery
// order and the first report error.
func executeFiles(ctx context.Context, files []discover.File, ex execution) ([]*result.File, error) {
	type slot struct {
		f          *result.File
		dispatched bool
	}
	done := make([]chan slot, len(files))
	for i := range done {
		done[i] = make(chan slot, 1)
	}
	pool := ex.pool
	if pool == nil {
		// Memory and CPUs are unlimited here; only the cap applies.
		pool = sched.New(sched.Config{Total: sched.Amount{Memory: math.MaxUint64 / 2, CPUs: math.MaxInt32}, Jobs: max(1, ex.limit)})
	}
	pool.Enqueue(len(files))
	var wg sync.WaitGroup

	dispatchDone := make(chan struct{})
	go func() {
		defer close(dispatchDone)
		for i, f := range files {
			var declared *sched.Amount
			if ex.declared != nil {
				declared = ex.declared(f)
			}
			sf, err := pool.Admit(ctx, f.Display, declared)
			switch {
			case errors.Is(err, sched.ErrHalted):
				r := notRun(f, msgNotRunFailFast)
				addProps(r, ex.props)
				done[i] <- slot{f: r}
				continue
			case err != nil: // interrupted
				done[i] <- slot{}
				continue
			}
			if ex.started != nil {
				ex.started()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := runOne(sched.WithFile(ctx, sf), ex, f)
				if ex.failFast && !r.Passed() {
					// Before the file's share goes back, so nothing
					// dispatches into it (B9).
					pool.Halt()
				}
				sf.Done() // claim_released (through the pool's observer) …
				if ex.stream != nil {
					ex.stream.completed(f, r) // … then file_completed
				}
				done[i] <- slot{f: r, dispatched: true}
			}()
		}
	}()

	var (
		out      []*result.File
		firstErr error
	)
	for i := range files {
		s := <-done[i]
		if s.f == nil {
			continue
		}
		out = append(out, s.f)
		if ex.report != nil {
			if err := ex.report(s.f, s.dispatched); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	<-dispatchDone
	wg.Wait()
	return out, firstErr
}

// runOne runs one file, turning a runner panic or a missing outcome into a
// crashed file so one broken file never takes the run down.
func runOne(ctx context.Context, ex execution, f discover.File) (r *result.File) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r = notRun(f, fmt.Sprintf("runner panic: %v\n%s", p, debug.Stack()))
			r.Crashed = true
			r.Started = start
			r.Duration = time.Since(start)
		}
		addProps(r, ex.props)
	}()
	r = ex.run(ctx, f, ex.opts)
	if r == nil {
		r = notRun(f, "internal error: the runner returned no outcome")
		r.Crashed = true
	}
	fillIdentity(r, f)
	return r
}

// notRun is the outcome of a file that did not run, as a chunk error.
func notRun(f discover.File, msg string) *result.File {
	r := &result.File{ChunkError: msg, HasChunkError: true}
	fillIdentity(r, f)
	return r
}

// fillIdentity sets the paths of r from f where the runner left them empty.
func fillIdentity(r *result.File, f discover.File) {
	if r.Path == "" {
		r.Path = f.Display
	}
	if r.RootRelative == "" {
		r.RootRelative = f.RootRel
	}
	if r.Canonical == "" {
		r.Canonical = f.Canonical
	}
}

// addProps sets the JUnit properties the runner did not set itself.
func addProps(r *result.File, props map[string]string) {
	if r.Properties == nil {
		r.Properties = map[string]string{}
	}
	for k, v := range props {
		if _, set := r.Properties[k]; !set {
			r.Properties[k] = v
		}
	}
}
