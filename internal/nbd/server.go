package nbd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

type listener interface{ Close() error }

type conn struct{ nc net.Conn }

// Serve accepts connections on l until Close (or l failing) and serves
// each in its own goroutine. It returns once l stops accepting; Close
// waits for the connections.
func (e *Export) Serve(l net.Listener) error {
	if err := e.addListener(l); err != nil {
		return err
	}
	return e.accept(l)
}

func (e *Export) addListener(l net.Listener) error {
	e.connMu.Lock()
	defer e.connMu.Unlock()
	if e.ctx.Err() != nil {
		l.Close()
		return ErrClosed
	}
	e.lns = append(e.lns, l)
	e.wg.Add(1)
	return nil
}

func (e *Export) accept(l net.Listener) error {
	defer e.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			if e.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nbd: accepting: %w", err)
		}
		go func() { _ = e.ServeConn(nc) }()
	}
}

// ServeConn runs one client connection to its end (DISC, EOF, a protocol
// error, or Close) and closes it.
func (e *Export) ServeConn(nc net.Conn) error {
	c := &conn{nc: nc}
	e.connMu.Lock()
	if e.ctx.Err() != nil {
		e.connMu.Unlock()
		nc.Close()
		return ErrClosed
	}
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	e.connMu.Unlock()
	defer func() {
		e.connMu.Lock()
		delete(e.conns, c)
		e.connMu.Unlock()
		nc.Close()
		e.wg.Done()
	}()
	err := e.serve(bufio.NewReaderSize(nc, 256<<10), bufio.NewWriterSize(nc, 256<<10))
	if errors.Is(err, errAbort) || errors.Is(err, io.EOF) || e.ctx.Err() != nil {
		return nil
	}
	return err
}

// serve runs the handshake, then requests one at a time until the client
// disconnects. Each request is answered before the next is read; QEMU
// keeps several in flight and they queue in the socket.
func (e *Export) serve(r *bufio.Reader, w *bufio.Writer) error {
	if err := e.negotiate(r, w); err != nil {
		return err
	}
	var hdr [requestLen]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("nbd: truncated request header: %w", err)
			}
			return err
		}
		req, err := parseRequest(hdr[:])
		if err != nil {
			return err
		}
		if req.typ == cmdDisc {
			return io.EOF
		}
		if req.length > maxRequestLen && (req.typ == cmdWrite || req.typ == cmdRead) {
			// The payload of an oversized write cannot be skipped safely.
			return fmt.Errorf("nbd: %s exceeds the %d byte limit", req, maxRequestLen)
		}
		if req.typ == cmdWrite || req.typ == cmdRead {
			if cap(buf) < int(req.length) {
				buf = make([]byte, req.length)
			}
			buf = buf[:req.length]
		}
		if req.typ == cmdWrite {
			if _, err := io.ReadFull(r, buf); err != nil {
				return fmt.Errorf("nbd: reading %s payload: %w", req, err)
			}
		}
		errno := e.handle(req, buf)
		if errno != 0 {
			e.counters.errors.Add(1)
		}
		if err := writeSimpleReply(w, req.cookie, errno); err != nil {
			return err
		}
		if req.typ == cmdRead && errno == 0 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		// Answer at once unless another request is already waiting.
		if r.Buffered() < requestLen {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// handle executes one request (payload in buf for writes, result in buf
// for reads) and returns the NBD error value, 0 for success.
func (e *Export) handle(req request, buf []byte) uint32 {
	switch req.typ {
	case cmdRead:
		e.counters.reads.Add(1)
	case cmdWrite:
		e.counters.writes.Add(1)
	case cmdFlush:
		e.counters.flushes.Add(1)
	case cmdTrim:
		e.counters.trims.Add(1)
	default:
		return errInval
	}
	if req.flags&^uint16(cmdFlagFUA) != 0 {
		return errInval
	}
	if (req.typ == cmdWrite || req.typ == cmdTrim) && e.readOnly {
		return errPerm
	}
	if req.typ != cmdFlush && (req.offset > uint64(e.size) || uint64(req.length) > uint64(e.size)-req.offset) {
		if req.typ == cmdWrite {
			return errNoSpc
		}
		return errInval
	}
	if d := e.ctl.delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return errShutdown
		}
	}
	if e.ctl.judge(req.typ, req.offset, uint64(req.length)) {
		return errIO
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errShutdown
	}
	off := int64(req.offset)
	var err error
	switch req.typ {
	case cmdRead:
		err = e.readView(buf, off)
		if err == nil {
			e.counters.bytesRead.Add(uint64(len(buf)))
		}
	case cmdWrite:
		if req.flags&cmdFlagFUA != 0 {
			err = e.writeDurable(buf, off)
		} else {
			err = e.holdWrite(buf, off)
		}
		if err == nil {
			e.counters.bytesWritten.Add(uint64(len(buf)))
		}
	case cmdFlush:
		err = e.flush()
	case cmdTrim:
		// Trimmed data may read back as anything (NBD leaves it
		// unspecified); keeping it is the cheapest honest answer, and a
		// power cut then cannot lose a trim.
	}
	if err != nil {
		return errIO
	}
	return 0
}

// Listen serves e on a new unix socket at path until Close.
func (e *Export) Listen(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("nbd: listening on %s: %w", path, err)
	}
	if err := e.addListener(l); err != nil {
		return err
	}
	go func() { _ = e.accept(l) }()
	return nil
}
