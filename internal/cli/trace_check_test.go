package cli

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/provium/provium/internal/trace"
)

// checkTrace asserts that a --trace file is valid trace-event JSON whose
// spans nest: on each file's track every span lies inside the file span,
// every VM operation inside a test (or the top level), and the runner's
// phases cover at least 95 % of the file's wall time.
func checkTrace(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc trace.File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("trace is not valid trace-event JSON: %v", err)
	}
	type span struct {
		name, cat string
		from, to  float64
	}
	tracks := map[int][]span{}
	vmSpans, counters := 0, 0
	for _, e := range doc.TraceEvents {
		switch e.Ph {
		case "X":
			if e.Dur == nil || *e.Dur < 0 {
				t.Fatalf("span %q without a duration", e.Name)
			}
			if e.PID == 1 {
				tracks[e.TID] = append(tracks[e.TID], span{e.Name, e.Cat, e.TS, e.TS + *e.Dur})
			}
			if e.PID == 2 {
				vmSpans++
			}
		case "C":
			counters++
		case "M":
		default:
			t.Fatalf("unexpected phase %q", e.Ph)
		}
	}
	if vmSpans == 0 || counters == 0 || len(tracks) == 0 {
		t.Fatalf("trace has %d file tracks, %d VM spans, %d counters", len(tracks), vmSpans, counters)
	}
	// Timestamps are µs as floats: allow rounding.
	const eps = 1.0
	inside := func(a, b span) bool { return a.from >= b.from-eps && a.to <= b.to+eps }
	for tid, spans := range tracks {
		var file *span
		for i := range spans {
			if spans[i].cat == "file" {
				file = &spans[i]
			}
		}
		if file == nil {
			t.Errorf("track %d has no file span", tid)
			continue
		}
		var phases []span
		for _, s := range spans {
			if s.cat == "file" {
				continue
			}
			if !inside(s, *file) {
				t.Errorf("%s: span %q [%f, %f] outside the file span [%f, %f]", file.name, s.name, s.from, s.to, file.from, file.to)
			}
			if s.cat == "runner" || s.cat == "test" {
				phases = append(phases, s)
			}
		}
		for _, s := range spans {
			if s.cat != "op" {
				continue
			}
			ok := false
			for _, p := range phases {
				if (p.cat == "test" || p.name == "top level") && inside(s, p) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: op %q is inside no test", file.name, s.name)
			}
		}
		// Union of the phases over the file's wall time.
		sort.Slice(phases, func(i, j int) bool { return phases[i].from < phases[j].from })
		covered, end := 0.0, file.from
		for _, p := range phases {
			from := max(p.from, end)
			if p.to > from {
				covered += p.to - from
				end = p.to
			}
		}
		if wall := file.to - file.from; wall > 0 && covered/wall < 0.95 {
			t.Errorf("%s: spans cover %.1f%% of the file's wall time, want ≥ 95%%", file.name, 100*covered/wall)
		}
	}
}
