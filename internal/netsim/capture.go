package netsim

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Capture pcap constants (10-lua-api.md §10: LINKTYPE_ETHERNET, snaplen
// 65535, microsecond timestamps, chunks of at most 64 KiB).
const (
	captureSnaplen  = 65535
	CaptureChunkMax = 64 << 10
	// captureBufferMax bounds what an unread capture holds; beyond it new
	// frames are counted as lost rather than kept.
	captureBufferMax = 64 << 20
)

// Capture is a live pcap stream of frames. Bytes accumulate until read;
// the first chunk starts with the pcap file header.
type Capture struct {
	port *Port // nil: bridge-wide

	mu     sync.Mutex
	buf    bytes.Buffer
	w      *pcapgo.Writer
	lost   uint64
	ended  bool
	notify chan struct{}
}

func newCapture() *Capture {
	c := &Capture{notify: make(chan struct{}, 1)}
	c.w = pcapgo.NewWriter(&c.buf)
	// The header cannot fail on a bytes.Buffer.
	_ = c.w.WriteFileHeader(captureSnaplen, layers.LinkTypeEthernet)
	return c
}

func (c *Capture) write(f []byte, at time.Time) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if c.buf.Len() > captureBufferMax {
		c.lost++
		c.mu.Unlock()
		return
	}
	n := min(len(f), captureSnaplen)
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: n, Length: len(f)}
	_ = c.w.WritePacket(ci, f[:n])
	c.mu.Unlock()
	c.signal()
}

func (c *Capture) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// end marks the capture finished (its bridge or port closed): readers get
// what is buffered, then io.EOF.
func (c *Capture) end() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	c.signal()
}

// Close stops capturing and drops what is buffered.
func (c *Capture) Close(s *Switch) {
	c.mu.Lock()
	c.ended = true
	c.buf.Reset()
	c.mu.Unlock()
	c.signal()
	if c.port != nil {
		c.port.dropTap(c)
	} else if s != nil {
		s.dropTap(c)
	}
}

// Poll returns up to CaptureChunkMax buffered bytes; ok is false when none
// are buffered. eof is true once the capture ended and is drained.
func (c *Capture) Poll() (chunk []byte, eof bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf.Len() > 0 {
		n := min(c.buf.Len(), CaptureChunkMax)
		chunk = bytes.Clone(c.buf.Next(n))
		if c.buf.Len() > 0 {
			c.signal()
		}
		return chunk, false
	}
	return nil, c.ended
}

// Read waits for the next chunk: io.EOF once the capture ended and is
// drained, ctx's error when ctx ends first.
func (c *Capture) Read(ctx context.Context) ([]byte, error) {
	for {
		chunk, eof := c.Poll()
		if chunk != nil {
			return chunk, nil
		}
		if eof {
			return nil, io.EOF
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Ended reports whether the capture ended (its source closed).
func (c *Capture) Ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Lost is how many frames did not fit in the buffer.
func (c *Capture) Lost() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}
