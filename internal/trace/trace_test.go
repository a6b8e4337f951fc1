package trace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provium/provium/internal/events"
)

// Spans from the runner and from the event stream land on one track per
// file, nested; VM spans and pool counters on their own processes.
func TestRecorderTracks(t *testing.T) {
	r := New()
	r.TrackName("a.test.lua", "tests/a.test.lua")
	t0 := time.Now()
	r.Observe(t0, events.FileDispatched{Path: "a.test.lua"})
	endTest := r.Begin("tests/a.test.lua", "test one")
	endOp := r.Begin("tests/a.test.lua", "vm:run")
	endOp()
	endTest()
	r.VMSpan("tests/a.test.lua", "v", "boot", t0, t0.Add(time.Millisecond))
	r.Observe(time.Now(), events.PoolState{Used: events.Resource{MemoryBytes: 1 << 20, CPUs: 1}})
	r.Observe(time.Now().Add(time.Millisecond), events.FileCompleted{Path: "a.test.lua", Status: "passed"})

	path := filepath.Join(t.TempDir(), "t.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc File
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	spans := map[string]Event{}
	counters := 0
	for _, e := range doc.TraceEvents {
		switch e.Ph {
		case "X":
			spans[e.Name] = e
		case "C":
			counters++
		}
	}
	file, test, op, boot := spans["file tests/a.test.lua"], spans["test one"], spans["vm:run"], spans["boot"]
	if file.Dur == nil || test.Dur == nil || op.Dur == nil || boot.Dur == nil {
		t.Fatalf("missing spans: %v", spans)
	}
	if file.TID != test.TID || test.TID != op.TID || file.PID != pidFiles || boot.PID != pidVMs {
		t.Fatalf("tracks: file %d/%d test %d op %d boot pid %d", file.PID, file.TID, test.TID, op.TID, boot.PID)
	}
	in := func(a, b Event) bool { return a.TS >= b.TS && a.TS+*a.Dur <= b.TS+*b.Dur }
	if !in(op, test) || !in(test, file) {
		t.Fatalf("spans do not nest: file %+v test %+v op %+v", file, test, op)
	}
	if op.Cat != "op" || test.Cat != "test" || counters != 2 {
		t.Fatalf("categories %q %q, %d counters", op.Cat, test.Cat, counters)
	}
}
