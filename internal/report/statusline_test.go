package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// fakeClock is advanced by hand, so throttling is tested without sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestStatusLine() (*StatusLine, *fakeClock, *bytes.Buffer) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var b bytes.Buffer
	return NewStatusLine(&b, clock.now), clock, &b
}

func TestStatusLineFormat(t *testing.T) {
	s, clock, b := newTestStatusLine()
	clock.advance(61*time.Minute + 5*time.Second)
	if err := s.Update(Progress{Done: 3, Total: 10, Running: 2, VMs: 4, Tests: 17}); err != nil {
		t.Fatal(err)
	}
	want := "\r\x1b[K[61:05] 3/10 files · 2 running · 4 VMs · 17 tests"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestStatusLineThrottlesRedraws(t *testing.T) {
	s, clock, b := newTestStatusLine()
	draws := func() int { return strings.Count(b.String(), "\r\x1b[K[") }
	for i := range 50 {
		if err := s.Update(Progress{Done: i, Total: 50}); err != nil {
			t.Fatal(err)
		}
		clock.advance(10 * time.Millisecond)
	}
	// 50 updates over 500 ms: at most one draw per 100 ms window.
	if n := draws(); n < 1 || n > 5 {
		t.Errorf("%d draws for 500 ms of updates, want between 1 and 5", n)
	}
	// The last state was throttled; a tick after the window paints it.
	clock.advance(100 * time.Millisecond)
	if err := s.Tick(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), " 49/50 files · 0 running · 0 VMs · 0 tests") {
		t.Errorf("latest state not drawn: %q", b.String())
	}
	// Nothing changed: a tick within the second leaves the screen alone.
	before := draws()
	clock.advance(200 * time.Millisecond)
	if err := s.Tick(); err != nil {
		t.Fatal(err)
	}
	if draws() != before {
		t.Error("unchanged line repainted within a second")
	}
	clock.advance(time.Second)
	if err := s.Tick(); err != nil {
		t.Fatal(err)
	}
	if draws() != before+1 {
		t.Error("clock did not advance after a second")
	}
}

func TestStatusLineClear(t *testing.T) {
	s, clock, b := newTestStatusLine()
	if err := s.Clear(); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("clearing an undrawn line wrote %q", b.String())
	}
	if err := s.Update(Progress{Total: 1}); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := s.Clear(); err != nil {
		t.Fatal(err)
	}
	if b.String() != "\r\x1b[K" {
		t.Errorf("clear wrote %q", b.String())
	}
	// After a clear the line comes back at the next chance.
	clock.advance(100 * time.Millisecond)
	b.Reset()
	if err := s.Tick(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "0/1 files") {
		t.Errorf("line not redrawn after clear: %q", b.String())
	}
}

func TestStatusLineRunStopsAndClears(t *testing.T) {
	var b bytes.Buffer
	s := NewStatusLine(&b, nil)
	if err := s.Update(Progress{Total: 2}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, time.Millisecond) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "\r\x1b[K") {
		t.Errorf("Run did not clear the line on exit: %q", b.String())
	}
}
