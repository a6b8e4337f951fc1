package proto

import (
	"encoding/binary"
	"io"
	"sync"
)

// yamux frame header layout (github.com/hashicorp/yamux const.go): version
// u8, type u8, flags u16, stream ID u32, length u32, big endian.
const (
	yamuxHeaderSize = 12
	yamuxVersion    = 0
	yamuxTypeData   = 0
)

// CoalesceFrames wraps the connection a yamux session runs on so that each
// data frame reaches conn in one Write. yamux's send loop writes a frame's
// 12-byte header and its body with two Writes; on the agent channel each
// Write is a virtio-serial transfer (a notification and a wakeup of the
// reader on the other side) and, for a worker's session, which runs on a
// stream of the agent's session, a whole frame of the outer session. The
// header of a data frame with a body is held back and sent together with
// the next Write, which yamux makes with that body; every other Write
// (window updates, pings, empty data frames with SYN/FIN/RST flags, and
// any Write that is not a lone header) goes through at once. The bytes on
// the wire are the same, only fewer Writes carry them.
//
// It expects, as yamux guarantees, one writer at a time; Write is still
// serialised with a mutex.
func CoalesceFrames(conn io.ReadWriteCloser) io.ReadWriteCloser {
	return &coalescer{ReadWriteCloser: conn}
}

type coalescer struct {
	io.ReadWriteCloser

	mu   sync.Mutex
	held bool   // buf holds a header waiting for its body
	buf  []byte // the held header, then header+body for one Write (≤ 12 + coalesceMax bytes)
}

// coalesceMax is the largest body copied behind its header; larger ones
// follow it in a Write of their own.
const coalesceMax = 16 << 10

func errShortWrite(err error) error {
	if err != nil {
		return err
	}
	return io.ErrShortWrite
}

// wantsBody reports whether p is exactly one yamux data-frame header that
// announces a body.
func wantsBody(p []byte) bool {
	return len(p) == yamuxHeaderSize && p[0] == yamuxVersion && p[1] == yamuxTypeData &&
		binary.BigEndian.Uint32(p[8:12]) > 0
}

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		if wantsBody(p) {
			c.buf = append(c.buf[:0], p...)
			c.held = true
			return len(p), nil
		}
		return c.ReadWriteCloser.Write(p)
	}
	c.held = false
	if len(p) > coalesceMax {
		// A bulk body: one more Write costs little next to copying it.
		if n, err := c.ReadWriteCloser.Write(c.buf); err != nil || n < len(c.buf) {
			return 0, errShortWrite(err)
		}
		return c.ReadWriteCloser.Write(p)
	}
	c.buf = append(c.buf, p...)
	n, err := c.ReadWriteCloser.Write(c.buf)
	if n < len(c.buf) && err == nil {
		err = io.ErrShortWrite
	}
	return max(n-yamuxHeaderSize, 0), err
}
