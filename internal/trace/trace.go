// Package trace records a run as Chrome/Perfetto trace-event JSON
// (--trace): one track per test file (its dispatch-to-completion span,
// the runner's phases, each test, each VM operation inside it) and one
// per VM (boots, restores, snapshots, its running time), fixture builds on
// their own tracks, and the pool as counters. Perfetto UI and
// chrome://tracing load the file as it is.
package trace

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/provium/provium/internal/events"
)

// Process ids group tracks in the viewer.
const (
	pidFiles    = 1
	pidVMs      = 2
	pidFixtures = 3
	pidPool     = 4
)

// Event is one trace event as the format defines it.
type Event struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	TS   float64        `json:"ts"` // µs since the run started
	Dur  *float64       `json:"dur,omitempty"`
	PID  int            `json:"pid"`
	TID  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// File is the JSON document.
type File struct {
	TraceEvents     []Event `json:"traceEvents"`
	DisplayTimeUnit string  `json:"displayTimeUnit"`
}

// Recorder collects spans; it is safe for concurrent use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	events  []Event
	tids    map[[2]string]int // (process, track) → tid
	nextTID int
	// open spans derived from the event stream
	files    map[string]time.Time // root-relative path → dispatch
	fileName map[string]string    // root-relative → track (display) name
	fixtures map[string]time.Time
}

// New starts a recording at now.
func New() *Recorder {
	return &Recorder{start: time.Now(), tids: map[[2]string]int{}, files: map[string]time.Time{},
		fileName: map[string]string{}, fixtures: map[string]time.Time{}}
}

// TrackName maps a file's root-relative path (events) to its track name
// (the display path the runner's spans use); without it the
// root-relative path names the track.
func (r *Recorder) TrackName(rootRel, display string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fileName[rootRel] = display
}

func (r *Recorder) us(t time.Time) float64 { return float64(t.Sub(r.start).Nanoseconds()) / 1e3 }

// tid returns the track id of (pid, track), naming it the first time.
// Caller holds r.mu.
func (r *Recorder) tid(pid int, track string) int {
	key := [2]string{fmt.Sprint(pid), track}
	if id, ok := r.tids[key]; ok {
		return id
	}
	r.nextTID++
	id := r.nextTID
	r.tids[key] = id
	r.events = append(r.events, Event{Name: "thread_name", Ph: "M", PID: pid, TID: id, Args: map[string]any{"name": track}})
	return id
}

func (r *Recorder) spanLocked(pid int, track, cat, name string, from, to time.Time, args map[string]any) {
	if to.Before(from) {
		to = from
	}
	d := float64(to.Sub(from).Nanoseconds()) / 1e3
	r.events = append(r.events, Event{Name: name, Cat: cat, Ph: "X", TS: r.us(from), Dur: &d, PID: pid, TID: r.tid(pid, track), Args: args})
}

// Begin starts a span on file's track (its display path) and returns
// its end. Spans begun and ended on one goroutine nest.
func (r *Recorder) Begin(file, name string) func() {
	from := time.Now()
	return func() {
		to := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.spanLocked(pidFiles, file, category(name), name, from, to, nil)
	}
}

// category groups spans for the viewer's filters.
func category(name string) string {
	switch {
	case len(name) > 5 && name[:5] == "test ":
		return "test"
	case len(name) > 3 && name[:3] == "vm:":
		return "op"
	}
	return "runner"
}

// VMSpan records a span on the track of one VM of file.
func (r *Recorder) VMSpan(file, vm, name string, from, to time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spanLocked(pidVMs, file+" "+vm, "vm", name, from, to, nil)
}

// Observe is an events.Observer: it turns the stream into file spans,
// fixture build spans and pool counters.
func (r *Recorder) Observe(ts time.Time, p events.Payload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := p.(type) {
	case events.FileDispatched:
		r.files[e.Path] = ts
	case events.FileCompleted:
		from, ok := r.files[e.Path]
		if !ok {
			return
		}
		delete(r.files, e.Path)
		track := e.Path
		if n, ok := r.fileName[e.Path]; ok {
			track = n
		}
		r.spanLocked(pidFiles, track, "file", "file "+track, from, ts, map[string]any{"status": e.Status})
	case events.FixtureBuildStarted:
		r.fixtures[e.Path] = ts
	case events.FixtureBuildDone:
		if from, ok := r.fixtures[e.Path]; ok {
			delete(r.fixtures, e.Path)
			r.spanLocked(pidFixtures, "fixture "+e.Path, "fixture", "build "+e.Path, from, ts,
				map[string]any{"snapshot_bytes": e.SnapshotBytes})
		}
	case events.PoolState:
		t := r.us(ts)
		pid := pidPool
		r.events = append(r.events,
			Event{Name: "pool memory (MiB)", Ph: "C", TS: t, PID: pid, Args: map[string]any{
				"used": float64(e.Used.MemoryBytes) / (1 << 20), "available": float64(e.Available.MemoryBytes) / (1 << 20)}},
			Event{Name: "pool cpus", Ph: "C", TS: t, PID: pid, Args: map[string]any{
				"used": e.Used.CPUs, "available": e.Available.CPUs}})
	}
}

// Document returns the recording, events sorted by time (metadata first).
func (r *Recorder) Document() File {
	r.mu.Lock()
	evs := append([]Event(nil), r.events...)
	r.mu.Unlock()
	names := []Event{
		{Name: "process_name", Ph: "M", PID: pidFiles, Args: map[string]any{"name": "files"}},
		{Name: "process_name", Ph: "M", PID: pidVMs, Args: map[string]any{"name": "VMs"}},
		{Name: "process_name", Ph: "M", PID: pidFixtures, Args: map[string]any{"name": "fixture builds"}},
		{Name: "process_name", Ph: "M", PID: pidPool, Args: map[string]any{"name": "pool"}},
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if (evs[i].Ph == "M") != (evs[j].Ph == "M") {
			return evs[i].Ph == "M"
		}
		return evs[i].TS < evs[j].TS
	})
	return File{TraceEvents: append(names, evs...), DisplayTimeUnit: "ms"}
}

// WriteFile writes the JSON document to path (through a temporary name).
func (r *Recorder) WriteFile(path string) error {
	b, err := json.Marshal(r.Document())
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
