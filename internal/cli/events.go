package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/trace"
)

// Event stream texts (20-cli-config.md §3.7).
const (
	msgJSONEventsStdout = "--json cannot be used with --events-stdout"
	errFmtSaveEvents    = "--save-events: cannot open `%s`: %v"
	errFmtEventsSocket  = "--events-socket: cannot listen on `%s`: %v"
	errFmtTrace         = "--trace: cannot write `%s`: %v"
)

// poolInterval is how often pool_state is sampled (30-runtime.md C2).
const poolInterval = time.Second

// runStream is one run's event stream: the emitter over the session's
// sinks, the trace recorder, and the scheduler's pool, whose numbers
// pool_state reports and whose dispatch and claim events it emits (it is
// the pool's sched.Observer).
type runStream struct {
	em      *events.Emitter
	file    *events.FileSink
	trace   *trace.Recorder
	pool    *sched.Pool
	rootRel map[string]string // display path → root-relative path

	stopPool func()
}

// openStream makes the run's emitter: the --save-events file (truncated;
// failing to open it is exit 2), --events-stdout, the session's
// --events-socket, and the --trace recorder as an observer.
func (s *session) openStream(files []discover.File, roots []string, fx *runner.Fixtures) (*runStream, error) {
	rs := &runStream{rootRel: map[string]string{}}
	var sinks []events.Sink
	if path := s.eventsFile(); path != "" {
		f, err := events.OpenFile(s.env.resolve(path))
		if err != nil {
			return nil, fmt.Errorf(errFmtSaveEvents, path, unwrapPath(err))
		}
		rs.file = f
		sinks = append(sinks, f)
	}
	if s.frames != nil {
		sinks = append(sinks, &events.WriterSink{W: s.frames, Flag: "--events-stdout"})
	}
	if s.sock != nil {
		sinks = append(sinks, s.sock)
	}
	rs.em = events.NewEmitter(func(line string) { fmt.Fprintln(s.env.Stderr, line) }, sinks...)
	if s.rf.trace != "" {
		rs.trace = trace.New()
		rs.em.Observe(rs.trace.Observe)
	}
	for _, f := range files {
		rs.rootRel[f.Display] = f.RootRel
		if rs.trace != nil {
			rs.trace.TrackName(f.RootRel, f.Display)
		}
	}
	if !rs.em.Active() {
		return rs, nil
	}
	if fx != nil {
		fx.Events = rs.fixtureEvents()
	}
	// All file_discovered precede any dispatch; the first pool_state
	// follows them (C4).
	var keyer *fixture.Keyer
	if fx != nil {
		keyer = fx.Keyer
	} else {
		keyer = runner.ScanKeyer(roots)
	}
	for _, f := range files {
		refs, claim, _ := keyer.ScanTestFile(f.Abs)
		ev := events.FileDiscovered{Path: f.RootRel, FixtureRefs: refs}
		if claim != nil {
			ev.DeclaredClaim = &events.Resource{MemoryBytes: claim.MemoryBytes, CPUs: uint32(max(claim.CPUs, 0))}
		}
		rs.em.Emit(ev)
	}
	return rs, nil
}

// eventsFile is where the run's frames are saved: --save-events, else the
// --coverage temporary.
func (s *session) eventsFile() string {
	if s.rf.saveEvents != "" {
		return s.rf.saveEvents
	}
	if s.cov != nil {
		return s.cov.path
	}
	return ""
}

// startPool makes p the stream's pool and emits pool_state now (after
// every file_discovered, C4) and every second until close.
func (rs *runStream) startPool(p *sched.Pool) {
	rs.pool = p
	if !rs.em.Active() {
		return
	}
	rs.em.Emit(rs.poolState())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(poolInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rs.em.Emit(rs.poolState())
			}
		}
	}()
	rs.stopPool = func() { cancel(); <-done }
}

// poolState samples the scheduler's numbers.
func (rs *runStream) poolState() events.PoolState {
	st := rs.pool.State()
	return events.PoolState{Used: resource(st.Used), Available: resource(st.Available)}
}

func resource(a sched.Amount) events.Resource {
	return events.Resource{MemoryBytes: a.Memory, CPUs: uint32(max(a.CPUs, 0))}
}

// path is a file's root-relative path, as events name it.
func (rs *runStream) path(display string) string {
	if p, ok := rs.rootRel[display]; ok {
		return p
	}
	return display
}

// close ends the stream: the last pool_state, then the file sink.
func (rs *runStream) close() {
	if rs.stopPool != nil {
		rs.stopPool()
		rs.em.Emit(rs.poolState())
	}
	rs.em.Close()
	if rs.file != nil {
		rs.file.Close()
	}
}

// FileBlocked implements sched.Observer.
func (rs *runStream) FileBlocked(path string, waitingFor sched.Amount, reason string) {
	rs.em.Emit(events.FileBlocked{Path: rs.path(path), WaitingFor: resource(waitingFor), Reason: reason})
}

// FileDispatched implements sched.Observer.
func (rs *runStream) FileDispatched(path string, reservation sched.Amount) {
	rs.em.Emit(events.FileDispatched{Path: rs.path(path), Reservation: resource(reservation)})
}

// ClaimAcquired implements sched.Observer.
func (rs *runStream) ClaimAcquired(path string, amount sched.Amount) {
	rs.em.Emit(events.ClaimAcquired{Path: rs.path(path), Amount: resource(amount)})
}

// ClaimReleased implements sched.Observer.
func (rs *runStream) ClaimReleased(path string, amount sched.Amount) {
	rs.em.Emit(events.ClaimReleased{Path: rs.path(path), Amount: resource(amount)})
}

// completed closes a file's events with file_completed; the pool has
// emitted its claim_released before (C4).
func (rs *runStream) completed(f discover.File, r *result.File) {
	rs.em.Emit(events.FileCompleted{Path: f.RootRel, Status: string(r.Status()), DurationNs: uint64(max(r.Duration, 0))})
}

// guestHooks turn machine lifecycles into vm_spawned/vm_shutdown, pool
// charges and trace spans.
func (rs *runStream) guestHooks() guest.Hooks {
	path := rs.path
	return guest.Hooks{
		Spawned: func(file, vm, profile string, memory uint64, cpus int, how string, began time.Time) {
			if rs.trace != nil {
				rs.trace.VMSpan(file, vm, how, began, time.Now())
			}
			rs.em.Emit(events.VMSpawned{File: path(file), VMName: vm, Profile: profile, MemoryBytes: memory})
		},
		Exited: func(file, vm string, up time.Duration) {
			if rs.trace != nil {
				now := time.Now()
				rs.trace.VMSpan(file, vm, "running", now.Add(-up), now)
			}
			rs.em.Emit(events.VMShutdown{File: path(file), VMName: vm, DurationNs: uint64(max(up, 0))})
		},
		Snapshot: func(file, vm string, began time.Time, d time.Duration) {
			if rs.trace != nil {
				rs.trace.VMSpan(file, vm, "snapshot", began, began.Add(d))
			}
		},
	}
}

// fixtureEvents are the fixture cache's events (fixture_build_*,
// fixture_cache_hit).
func (rs *runStream) fixtureEvents() luaapi.FixtureEvents {
	return luaapi.FixtureEvents{
		Waiting: func(name, heldBy string) {
			if p, ok := rs.rootRel[heldBy]; ok {
				heldBy = p
			}
			rs.em.Emit(events.FixtureBuildWaiting{Path: name, HeldByFile: heldBy})
		},
		Started: func(name string) { rs.em.Emit(events.FixtureBuildStarted{Path: name}) },
		Done: func(name string, d time.Duration, bytes uint64) {
			rs.em.Emit(events.FixtureBuildDone{Path: name, DurationNs: uint64(max(d, 0)), SnapshotBytes: bytes})
		},
		CacheHit: func(name string) { rs.em.Emit(events.FixtureCacheHit{Path: name}) },
	}
}
