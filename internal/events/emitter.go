package events

import (
	"fmt"
	"sync"
	"time"
)

// Sink receives every encoded frame. Write gets the frame bytes (owned by
// the emitter; a sink that keeps them must copy) and must not block the
// run for long; an error drops the sink for the rest of the run.
type Sink interface {
	Write(frame []byte) error
	// Name is how warnings name the sink (`--save-events`).
	Name() string
}

// Observer hears every event in stream order, in process (the trace view,
// the pool counters); it must not block or emit.
type Observer func(ts time.Time, p Payload)

// Emitter stamps, encodes and fans events out. It is safe for concurrent
// use; events are delivered in one total order, their ts never decreasing
// (taken under the lock and clamped, C1). A nil *Emitter drops events.
type Emitter struct {
	mu        sync.Mutex
	last      int64
	sinks     []Sink
	observers []Observer
	warn      func(string)
	now       func() time.Time
}

// NewEmitter returns an emitter writing to sinks; warn (may be nil)
// hears that a sink failed and was dropped. Losing events never fails a
// run.
func NewEmitter(warn func(string), sinks ...Sink) *Emitter {
	return &Emitter{sinks: sinks, warn: warn, now: time.Now}
}

// Observe adds an in-process observer.
func (e *Emitter) Observe(o Observer) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observers = append(e.observers, o)
}

// Active reports whether anything listens; callers may skip building
// expensive payloads otherwise.
func (e *Emitter) Active() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sinks) > 0 || len(e.observers) > 0
}

// Emit sends one event.
func (e *Emitter) Emit(p Payload) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	ts := now.UnixNano()
	if ts < e.last {
		ts = e.last
		now = time.Unix(0, ts)
	}
	e.last = ts
	for _, o := range e.observers {
		o(now, p)
	}
	if len(e.sinks) == 0 {
		return
	}
	frame, err := Encode(ts, p)
	if err != nil {
		e.warnf("provium: warning: event %s dropped: %v", p.Kind(), err)
		return
	}
	kept := e.sinks[:0]
	for _, s := range e.sinks {
		if err := s.Write(frame); err != nil {
			e.warnf("provium %s: %v; no more events go there", s.Name(), err)
			continue
		}
		kept = append(kept, s)
	}
	e.sinks = kept
}

func (e *Emitter) warnf(format string, args ...any) {
	if e.warn != nil {
		e.warn(fmt.Sprintf(format, args...))
	}
}

// Close ends the stream: later events go nowhere (a VM kept by
// --keep-failed shuts down after its run's stream ended).
func (e *Emitter) Close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sinks, e.observers = nil, nil
}
