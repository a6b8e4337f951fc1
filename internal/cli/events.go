package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
	"github.com/provium/provium/internal/trace"
)

// Event stream texts (20-cli-config.md §3.7).
const (
	msgJSONEventsStdout = "--json cannot be used with --events-stdout"
	errFmtSaveEvents    = "--save-events: cannot open `%s`: %v"
	errFmtEventsSocket  = "--events-socket: cannot listen on `%s`: %v"
	errFmtTrace         = "--trace: cannot write `%s`: %v"
)

// Pool charges (30-runtime.md B2).
const (
	fileOverhead = 50 << 20
	vmOverhead   = 100 << 20
	poolInterval = time.Second
)

// runStream is one run's event stream: the emitter over the session's
// sinks, the trace recorder, the pool numbers pool_state reports.
type runStream struct {
	em      *events.Emitter
	file    *events.FileSink
	trace   *trace.Recorder
	pool    poolNumbers
	slots   *slotPool
	rootRel map[string]string // display path → root-relative path
	claims  map[string]*events.Resource

	stopPool func()
}

// poolNumbers is where pool_state reads its numbers. Until the scheduler
// (internal/sched) owns the pool this is the run's own accounting of the
// same charges (slotPool); swapping it is one assignment in openStream.
type poolNumbers interface {
	PoolState() events.PoolState
}

// openStream makes the run's emitter: the --save-events file (truncated;
// failing to open it is exit 2), --events-stdout, the session's
// --events-socket, and the --trace recorder as an observer.
func (s *session) openStream(files []discover.File, roots []string, fx *runner.Fixtures) (*runStream, error) {
	rs := &runStream{rootRel: map[string]string{}, claims: map[string]*events.Resource{}}
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
	rs.slots = newSlotPool()
	rs.pool = rs.slots
	rs.em.Observe(rs.slots.observe)
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
			rs.claims[f.Display] = ev.DeclaredClaim
		}
		rs.em.Emit(ev)
	}
	rs.startPool()
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

// startPool emits pool_state now and every second until close.
func (rs *runStream) startPool() {
	rs.em.Emit(rs.pool.PoolState())
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
				rs.em.Emit(rs.pool.PoolState())
			}
		}
	}()
	rs.stopPool = func() { cancel(); <-done }
}

// close ends the stream: the last pool_state, then the file sink.
func (rs *runStream) close() {
	if rs.stopPool != nil {
		rs.stopPool()
		rs.em.Emit(rs.pool.PoolState())
	}
	if rs.file != nil {
		rs.file.Close()
	}
}

// reservation is what dispatching a file reserves: the file overhead and
// its declared claim.
func (rs *runStream) reservation(f discover.File) events.Resource {
	r := events.Resource{MemoryBytes: fileOverhead}
	if c := rs.claims[f.Display]; c != nil {
		r.MemoryBytes += c.MemoryBytes
		r.CPUs += c.CPUs
	}
	return r
}

func (rs *runStream) blocked(f discover.File) {
	rs.em.Emit(events.FileBlocked{Path: f.RootRel, WaitingFor: rs.reservation(f), Reason: events.BlockedPoolFull})
}

func (rs *runStream) dispatched(f discover.File) {
	rs.em.Emit(events.FileDispatched{Path: f.RootRel, Reservation: rs.reservation(f)})
	if c := rs.claims[f.Display]; c != nil {
		rs.em.Emit(events.ClaimAcquired{Path: f.RootRel, Amount: *c})
	}
}

// completed closes a file's events: its claim, then file_completed.
func (rs *runStream) completed(f discover.File, r *result.File) {
	if c := rs.claims[f.Display]; c != nil {
		rs.em.Emit(events.ClaimReleased{Path: f.RootRel, Amount: *c})
	}
	rs.em.Emit(events.FileCompleted{Path: f.RootRel, Status: string(r.Status()), DurationNs: uint64(max(r.Duration, 0))})
}

// guestHooks turn machine lifecycles into vm_spawned/vm_shutdown, pool
// charges and trace spans.
func (rs *runStream) guestHooks() guest.Hooks {
	path := func(display string) string {
		if p, ok := rs.rootRel[display]; ok {
			return p
		}
		return display
	}
	return guest.Hooks{
		Spawned: func(file, vm, profile string, memory uint64, cpus int, how string, began time.Time) {
			rs.slots.vmUp(file, vm, memory, cpus)
			if rs.trace != nil {
				rs.trace.VMSpan(file, vm, how, began, time.Now())
			}
			rs.em.Emit(events.VMSpawned{File: path(file), VMName: vm, Profile: profile, MemoryBytes: memory})
		},
		Exited: func(file, vm string, up time.Duration) {
			rs.slots.vmDown(file, vm)
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

// slotPool is the run's pool accounting without the scheduler: the B1
// budget and the B2 charges of dispatched files and running VMs.
type slotPool struct {
	total events.Resource

	mu    sync.Mutex
	files map[string]events.Resource // root-relative path → reservation
	vms   map[[2]string]events.Resource
}

func newSlotPool() *slotPool {
	total := events.Resource{MemoryBytes: memTotal() / 10 * 8, CPUs: uint32(max(1, runtime.NumCPU()))}
	return &slotPool{total: total, files: map[string]events.Resource{}, vms: map[[2]string]events.Resource{}}
}

func (p *slotPool) observe(_ time.Time, ev events.Payload) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case events.FileDispatched:
		p.files[e.Path] = e.Reservation
	case events.FileCompleted:
		delete(p.files, e.Path)
	}
}

func (p *slotPool) vmUp(file, vm string, memory uint64, cpus int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vms[[2]string{file, vm}] = events.Resource{MemoryBytes: memory + vmOverhead, CPUs: uint32(max(cpus, 0))}
}

func (p *slotPool) vmDown(file, vm string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.vms, [2]string{file, vm})
}

// PoolState implements poolNumbers.
func (p *slotPool) PoolState() events.PoolState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var used events.Resource
	for _, r := range p.files {
		used.MemoryBytes += r.MemoryBytes
		used.CPUs += r.CPUs
	}
	for _, r := range p.vms {
		used.MemoryBytes += r.MemoryBytes
		used.CPUs += r.CPUs
	}
	avail := events.Resource{}
	if used.MemoryBytes < p.total.MemoryBytes {
		avail.MemoryBytes = p.total.MemoryBytes - used.MemoryBytes
	}
	if used.CPUs < p.total.CPUs {
		avail.CPUs = p.total.CPUs - used.CPUs
	}
	return events.PoolState{Used: used, Available: avail}
}

// memTotal is MemTotal of /proc/meminfo in bytes (0 when unreadable).
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, _ := strconv.ParseUint(fields[0], 10, 64)
		return kb << 10
	}
	return 0
}
