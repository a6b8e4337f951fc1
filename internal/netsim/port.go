package netsim

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Counters are a port's traffic from its guest's point of view: rx is what
// the switch delivered to it, tx what it accepted from it.
type Counters struct {
	RxBytes, TxBytes, RxPackets, TxPackets uint64
	// Errors counts malformed (shorter than an Ethernet header) and
	// oversize frames from the guest.
	Errors uint64
	// Dropped counts frame copies bound for the port that rules dropped.
	Dropped uint64
}

type counters struct {
	rxBytes, txBytes, rxPackets, txPackets, errors, dropped atomic.Uint64
}

// Port is one member's attachment to a switch.
type Port struct {
	sw     *Switch
	name   string
	exempt bool
	ctr    counters

	mu      sync.Mutex
	ln      *net.UnixListener // nil for in-process peers
	path    string
	conn    net.Conn // current peer connection; nil when none
	queue   frameHeap
	seq     uint64
	wake    chan struct{}
	ptaps   []*Capture
	closed  bool
	stopped chan struct{}
}

func newPort(s *Switch, name string, exempt bool) *Port {
	return &Port{sw: s, name: name, exempt: exempt, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// Name is the member name the port belongs to.
func (p *Port) Name() string { return p.name }

// SocketPath is the unix socket the port listens on ("" before Listen).
func (p *Port) SocketPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.path
}

// Listen makes the port accept its QEMU's connections on a unix socket at
// path (in the guest's scratch dir); it replaces an earlier socket (the
// guest's previous QEMU). QEMU may connect any number of times; the latest
// connection wins.
func (p *Port) Listen(path string) error {
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("netsim: bridge %s: port of %s: %w", p.sw.name, p.name, err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	old := p.ln
	p.ln, p.path = ln, path
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go p.accept(ln)
	return nil
}

// Counters returns a snapshot of the counters.
func (p *Port) Counters() Counters {
	return Counters{
		RxBytes: p.ctr.rxBytes.Load(), TxBytes: p.ctr.txBytes.Load(),
		RxPackets: p.ctr.rxPackets.Load(), TxPackets: p.ctr.txPackets.Load(),
		Errors: p.ctr.errors.Load(), Dropped: p.ctr.dropped.Load(),
	}
}

// Connected reports whether a peer is connected now.
func (p *Port) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn != nil
}

// accept serves every connection QEMU makes, one at a time: a new one
// replaces the old (the guest's QEMU was replaced by a restore).
func (p *Port) accept(ln *net.UnixListener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.serve(c)
	}
}

// Adopt makes c, a QEMU netdev connection accepted elsewhere (a restored
// card that was on no bridge), the port's connection, as if the port had
// accepted it.
func (p *Port) Adopt(c net.Conn) { p.serve(c) }

// serve makes c the port's connection and reads frames from it.
func (p *Port) serve(c net.Conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	old := p.conn
	p.conn = c
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go p.readLoop(c)
}

func (p *Port) readLoop(c net.Conn) {
	defer func() {
		c.Close()
		p.mu.Lock()
		if p.conn == c {
			p.conn = nil
		}
		p.mu.Unlock()
	}()
	var hdr [4]byte
	for {
		f, err := readFrame(c, hdr[:])
		if err != nil {
			if errors.Is(err, errOversize) {
				p.ctr.errors.Add(1)
			}
			return
		}
		if len(f) < minFrame {
			p.ctr.errors.Add(1)
			continue
		}
		if !p.sw.linkUp(p.name) {
			continue
		}
		now := time.Now()
		p.ctr.txPackets.Add(1)
		p.ctr.txBytes.Add(uint64(len(f)))
		for _, t := range p.taps() {
			t.write(f, now)
		}
		p.sw.forward(p, f, now)
	}
}

// queued is a frame waiting for its delivery time.
type queued struct {
	f   []byte
	at  time.Time
	seq uint64
}

type frameHeap []queued

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(queued)) }
func (h *frameHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxQueued bounds a port's queue (frames): a peer that stops reading must
// not make the switch hold memory without end.
const maxQueued = 8192

// enqueue schedules a frame copy for delivery at at; frames due at the same
// time leave in arrival order.
func (p *Port) enqueue(f []byte, at time.Time) {
	p.mu.Lock()
	if p.closed || len(p.queue) >= maxQueued {
		p.mu.Unlock()
		p.ctr.dropped.Add(1)
		return
	}
	p.seq++
	heap.Push(&p.queue, queued{f: f, at: at, seq: p.seq})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// writeLoop delivers due frames to the current connection, batching what
// is due into one write.
func (p *Port) writeLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var buf []byte
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		now := time.Now()
		buf = buf[:0]
		var sent []queued
		for len(p.queue) > 0 && !p.queue[0].at.After(now) && len(buf) < 256<<10 {
			q := heap.Pop(&p.queue).(queued)
			buf = appendFrame(buf, q.f)
			sent = append(sent, q)
		}
		var wait time.Duration = -1
		if len(p.queue) > 0 && len(sent) == 0 {
			wait = p.queue[0].at.Sub(now)
		}
		conn := p.conn
		taps := p.ptaps
		p.mu.Unlock()

		if len(sent) > 0 {
			if conn != nil && p.sw.linkUp(p.name) {
				// Captured as handed to the guest's connection, before the
				// write: a frame the guest has seen is in the capture.
				at := time.Now()
				for _, q := range sent {
					for _, t := range taps {
						t.write(q.f, at)
					}
				}
				if _, err := conn.Write(buf); err == nil {
					for _, q := range sent {
						p.ctr.rxPackets.Add(1)
						p.ctr.rxBytes.Add(uint64(len(q.f)))
					}
				}
			}
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.wake:
				if !timer.Stop() {
					<-timer.C
				}
			case <-p.stopped:
				return
			}
			continue
		}
		select {
		case <-p.wake:
		case <-p.stopped:
			return
		}
	}
}

// Capture starts a capture of this port: the guest's frames as accepted and
// the frames delivered to it.
func (p *Port) Capture() (*Capture, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	c := newCapture()
	c.port = p
	p.ptaps = append(p.ptaps, c)
	return c, nil
}

func (p *Port) taps() []*Capture {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ptaps
}

func (p *Port) dropTap(c *Capture) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ptaps = slices.DeleteFunc(slices.Clone(p.ptaps), func(x *Capture) bool { return x == c })
}

// close ends the port: listener, connection, writer; its captures end.
func (p *Port) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conn, ln := p.conn, p.ln
	p.conn = nil
	taps := p.ptaps
	p.ptaps = nil
	p.queue = nil
	close(p.stopped)
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if conn != nil {
		conn.Close()
	}
	for _, c := range taps {
		c.end()
	}
}
