package report

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress is what the status line shows.
type Progress struct {
	Done, Total int // files finished / discovered
	Running     int // files in flight
	VMs         int // VMs currently booted
	Tests       int // tests finished
}

// minRedraw caps the status line at 10 redraws per second (§4.3): a run
// with many short tests must not spend its time repainting a terminal.
const minRedraw = 100 * time.Millisecond

// eraseLine is a carriage return plus ANSI erase-to-end-of-line. The status
// line is only enabled on a terminal, so it never reaches a file or a pipe.
const eraseLine = "\r\x1b[K"

// StatusLine draws a one-line progress display on a terminal (stderr),
// repainting in place. Callers clear it before writing other output to the
// same terminal and before the summary.
type StatusLine struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	start   time.Time
	last    time.Time // time of the last draw
	drawn   bool      // the line is on screen
	state   Progress
	changed bool // state differs from what is on screen
}

// NewStatusLine starts the elapsed-time clock at now(). A nil now uses
// time.Now; tests inject a fake clock.
func NewStatusLine(w io.Writer, now func() time.Time) *StatusLine {
	if now == nil {
		now = time.Now
	}
	return &StatusLine{w: w, now: now, start: now()}
}

// Update records p and repaints unless the last paint was under 100 ms ago;
// a throttled update is painted by a later Update or Tick.
func (s *StatusLine) Update(p Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = p
	s.changed = true
	return s.drawLocked()
}

// Tick repaints so the elapsed time advances even when nothing finishes.
func (s *StatusLine) Tick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drawLocked()
}

// Clear erases the line if it is on screen. The next Update or Tick draws
// it again.
func (s *StatusLine) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.drawn {
		return nil
	}
	s.drawn = false
	s.changed = true
	if _, err := io.WriteString(s.w, eraseLine); err != nil {
		return fmt.Errorf("report: clear status line: %w", err)
	}
	return nil
}

// Run ticks every interval until ctx ends, then clears the line. The caller
// owns the goroutine it runs in.
func (s *StatusLine) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.Clear()
		case <-t.C:
			if err := s.Tick(); err != nil {
				return err
			}
		}
	}
}

func (s *StatusLine) drawLocked() error {
	now := s.now()
	if s.drawn && now.Sub(s.last) < minRedraw {
		return nil
	}
	// An unchanged line is still repainted once a second, for the clock.
	if s.drawn && !s.changed && now.Sub(s.last) < time.Second {
		return nil
	}
	s.last = now
	s.drawn = true
	s.changed = false
	if _, err := io.WriteString(s.w, eraseLine+s.render(now)); err != nil {
		return fmt.Errorf("report: draw status line: %w", err)
	}
	return nil
}

// render formats `[mm:ss] <done>/<total> files · <r> running · <v> VMs ·
// <t> tests`.
func (s *StatusLine) render(now time.Time) string {
	elapsed := now.Sub(s.start)
	if elapsed < 0 {
		elapsed = 0
	}
	secs := int64(elapsed / time.Second)
	p := s.state
	return fmt.Sprintf("[%02d:%02d] %d/%d files · %d running · %d VMs · %d tests",
		secs/60, secs%60, p.Done, p.Total, p.Running, p.VMs, p.Tests)
}
