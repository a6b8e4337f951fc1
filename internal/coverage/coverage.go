// Package coverage tallies test outcomes of an event stream by a meta key
// (30-runtime.md C7): the logic behind cmd/provium-coverage.
package coverage

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"sort"
	"strings"

	"github.com/provium/provium/internal/events"
)

// Unset is the bucket of tests whose meta has no usable value for the key.
const Unset = "<unset>"

// TestRef is one test counted in a bucket.
type TestRef struct {
	ID     string `json:"id"` // path::name
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Bucket is the tally of one meta value.
type Bucket struct {
	Name    string    `json:"name"`
	Passed  int       `json:"passed"`
	Failed  int       `json:"failed"`
	Skipped int       `json:"skipped"`
	Total   int       `json:"total"`
	Tests   []TestRef `json:"-"`
}

// Tally counts outcomes by meta[Key]. It also follows the run's files so
// a socket reader knows when a run ended.
type Tally struct {
	Key     string
	buckets map[string]*Bucket
	totals  Bucket

	discovered map[string]bool
	completed  map[string]bool
}

// New returns an empty tally by key.
func New(key string) *Tally {
	return &Tally{Key: key, buckets: map[string]*Bucket{}, discovered: map[string]bool{}, completed: map[string]bool{}}
}

// Add counts one event; other kinds only track the run's progress.
func (t *Tally) Add(ev events.Event) {
	switch p := ev.Payload.(type) {
	case events.FileDiscovered:
		t.discovered[p.Path] = true
	case events.FileCompleted:
		t.completed[p.Path] = true
	case events.TestPassed:
		t.count(p.Meta, TestRef{ID: p.Path + "::" + p.Name, Status: "passed"})
	case events.TestFailed:
		t.count(p.Meta, TestRef{ID: p.Path + "::" + p.Name, Status: "failed", Reason: p.Reason})
	case events.TestSkipped:
		t.count(p.Meta, TestRef{ID: p.Path + "::" + p.Name, Status: "skipped", Reason: p.Reason})
	}
}

// RunEnded reports whether every discovered file completed.
func (t *Tally) RunEnded() bool {
	if len(t.discovered) == 0 {
		return false
	}
	for p := range t.discovered {
		if !t.completed[p] {
			return false
		}
	}
	return true
}

// InFlight reports whether a discovered file has not completed yet.
func (t *Tally) InFlight() bool {
	for p := range t.discovered {
		if !t.completed[p] {
			return true
		}
	}
	return false
}

// Empty reports whether nothing was counted or discovered.
func (t *Tally) Empty() bool { return len(t.discovered) == 0 && t.totals.Total == 0 }

// bucketsOf lists the buckets a meta value falls in.
func bucketsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		seen := map[string]bool{}
		for _, e := range x {
			if s, ok := e.(string); ok && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return []string{Unset}
}

func (t *Tally) count(meta events.Meta, ref TestRef) {
	for _, name := range bucketsOf(meta[t.Key]) {
		b := t.buckets[name]
		if b == nil {
			b = &Bucket{Name: name}
			t.buckets[name] = b
		}
		add(b, ref)
	}
	add(&t.totals, ref)
}

func add(b *Bucket, ref TestRef) {
	switch ref.Status {
	case "passed":
		b.Passed++
	case "failed":
		b.Failed++
	case "skipped":
		b.Skipped++
	}
	b.Total++
	b.Tests = append(b.Tests, ref)
}

// Buckets returns the buckets sorted bytewise, <unset> last.
func (t *Tally) Buckets() []*Bucket {
	out := make([]*Bucket, 0, len(t.buckets))
	for _, b := range t.buckets {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == Unset) != (out[j].Name == Unset) {
			return out[j].Name == Unset
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Totals is the count over all tests (each test once).
func (t *Tally) Totals() Bucket { return t.totals }

// WriteText writes the table.
func (t *Tally) WriteText(w io.Writer) error {
	bs := t.Buckets()
	width := len("total")
	for _, b := range bs {
		width = max(width, len(b.Name))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "coverage by `%s`\n", t.Key)
	row := func(name string, p, f, s, n any) {
		fmt.Fprintf(&sb, "  %-*s  %7v %7v %7v %7v\n", width, name, p, f, s, n)
	}
	row("", "passed", "failed", "skipped", "total")
	for _, b := range bs {
		row(b.Name, b.Passed, b.Failed, b.Skipped, b.Total)
	}
	tot := t.totals
	row("total", tot.Passed, tot.Failed, tot.Skipped, tot.Total)
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteJSON writes the same counts as one JSON object.
func (t *Tally) WriteJSON(w io.Writer) error {
	doc := struct {
		By      string    `json:"by"`
		Buckets []*Bucket `json:"buckets"`
		Totals  Bucket    `json:"totals"`
	}{t.Key, t.Buckets(), t.totals}
	if doc.Buckets == nil {
		doc.Buckets = []*Bucket{}
	}
	doc.Totals.Name = "total"
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteHTML writes a self-contained report: the table and, per bucket,
// its tests with their failure reasons. Every text is escaped.
func (t *Tally) WriteHTML(w io.Writer) error {
	e := html.EscapeString
	var sb strings.Builder
	sb.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>provium coverage by " + e(t.Key) + "</title>\n")
	sb.WriteString("<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}" +
		".failed{color:#b00}.passed{color:#070}.skipped{color:#777}pre{white-space:pre-wrap;margin:0}</style></head><body>\n")
	sb.WriteString("<h1>coverage by <code>" + e(t.Key) + "</code></h1>\n<table><tr><th>" + e(t.Key) +
		"</th><th>passed</th><th>failed</th><th>skipped</th><th>total</th></tr>\n")
	bs := t.Buckets()
	for _, b := range bs {
		fmt.Fprintf(&sb, "<tr><td><a href=\"#b-%s\">%s</a></td><td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr>\n",
			e(b.Name), e(b.Name), b.Passed, b.Failed, b.Skipped, b.Total)
	}
	tot := t.totals
	fmt.Fprintf(&sb, "<tr><th>total</th><th>%d</th><th>%d</th><th>%d</th><th>%d</th></tr>\n</table>\n", tot.Passed, tot.Failed, tot.Skipped, tot.Total)
	for _, b := range bs {
		fmt.Fprintf(&sb, "<h2 id=\"b-%s\">%s</h2>\n<ul>\n", e(b.Name), e(b.Name))
		for _, r := range b.Tests {
			fmt.Fprintf(&sb, "<li class=\"%s\">%s: <code>%s</code>", e(r.Status), e(r.Status), e(r.ID))
			if r.Reason != "" {
				fmt.Fprintf(&sb, "<pre>%s</pre>", e(r.Reason))
			}
			sb.WriteString("</li>\n")
		}
		sb.WriteString("</ul>\n")
	}
	sb.WriteString("</body></html>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}
