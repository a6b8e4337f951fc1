package proto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Session sync. A virtio-serial port carries no reliable "host went away"
// signal in the byte stream: a host that disconnects and reconnects quickly
// (or restores a snapshot) may find the agent still inside its old yamux
// session, and yamux stream IDs restart at 1, so the new session's first
// bytes would be eaten by the old one. Every session therefore begins with
// a handshake below yamux, three-way like TCP's:
//
//	host:  [zero padding] SYNC(n)   repeated with growing padding until an ACK
//	agent: ACK(n)                   for every SYNC it sees
//	host:  GO(n)                    for the first ACK of one of its nonces
//	agent: GOACK(n)                 then yamux starts on both sides
//
// A SYNC's first byte is not a valid yamux version, so an agent still in an
// old session drops it and comes back to sync; the zero padding (read by
// yamux as empty frames) completes a frame the old host left half-written.
// Both sides skip bytes that are not a token of theirs, so stale bytes from
// an earlier connection are harmless.

// RestartBurstLen is how many 0xFF bytes a restarted agent writes on the
// port before it waits for a SYNC. A host still inside the session of the
// agent that died would otherwise wait forever (keepalives are off: a
// paused VM is not a dead one). The burst completes any frame the dead
// agent left half-written (a frame body is at most the host's receive
// window, 1 MiB) and then reads as an invalid yamux version, so the host's
// session fails at once and its calls return. A host in DialSync skips the
// bytes like any other stale ones.
const RestartBurstLen = 1<<20 + 4<<10

// RestartBurstByte fills the burst: not a valid yamux version.
const RestartBurstByte = 0xFF

// Sync tokens: an 8-byte tag then an 8-byte big-endian nonce.
var (
	tagSync  = []byte("PRVMSYNC")
	tagAck   = []byte("PRVMACK!")
	tagGo    = []byte("PRVMGO!!")
	tagGoAck = []byte("PRVMGACK")
)

const tokenLen = 16

// Host resend schedule: first retry after syncRetryMin, doubling up to
// syncRetryMax (kept short: a booting agent finds the queued SYNCs the
// moment it opens its port, but a lost one costs a whole interval). The
// first SYNC to a restored guest is always lost: the agent in it is still
// inside the session the snapshot caught, and that SYNC is what ends it,
// so the first retry comes soon. Zero
// padding doubles from syncPadMin while the total stays within
// syncPadBudget: enough to flush any half-written yamux frame (≤ one
// window) without making a slow-booting agent scan megabytes of zeros.
//
// The first write carries its SYNC twice, syncAgainGap bytes apart: an
// agent still inside an old session (a restored guest always is) reads
// the first one through yamux, whose buffered reader takes at most 4 KiB
// at a time, and dies on it; the second one is still unread in the port
// when the agent comes back to sync, so the handshake needs no retry.
const (
	syncAgainGap  = 4<<10 + tokenLen
	syncRetryMin  = 5 * time.Millisecond
	syncRetryMax  = 500 * time.Millisecond
	syncPadMin    = 4 << 10
	syncPadBudget = 2 << 20
)

func token(tag []byte, nonce uint64) []byte {
	b := make([]byte, tokenLen)
	copy(b, tag)
	binary.BigEndian.PutUint64(b[8:], nonce)
	return b
}

// scanner finds tokens in a byte stream read in arbitrary pieces.
type scanner struct {
	r   io.Reader
	buf []byte
}

// next returns the next token whose tag is in tags, discarding everything
// before it, and keeps the bytes after it for rest.
func (s *scanner) next(tags ...[]byte) (tag []byte, nonce uint64, err error) {
	chunk := make([]byte, 4096)
	for {
		best, bestTag := -1, []byte(nil)
		for _, t := range tags {
			if i := bytes.Index(s.buf, t); i >= 0 && (best < 0 || i < best) {
				best, bestTag = i, t
			}
		}
		if best >= 0 && len(s.buf) >= best+tokenLen {
			nonce = binary.BigEndian.Uint64(s.buf[best+8:])
			s.buf = s.buf[best+tokenLen:]
			return bestTag, nonce, nil
		}
		if best < 0 && len(s.buf) > tokenLen {
			// Keep only a tail that could start a split token.
			s.buf = append(s.buf[:0], s.buf[len(s.buf)-tokenLen:]...)
		}
		n, err := s.r.Read(chunk)
		s.buf = append(s.buf, chunk[:n]...)
		if err != nil && n == 0 {
			return nil, 0, err
		}
	}
}

// prefixConn replays bytes read past the handshake before reading conn.
type prefixConn struct {
	io.ReadWriteCloser
	rest []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		p.rest = p.rest[n:]
		return n, nil
	}
	return p.ReadWriteCloser.Read(b)
}

func withRest(conn io.ReadWriteCloser, rest []byte) io.ReadWriteCloser {
	if len(rest) == 0 {
		return conn
	}
	return &prefixConn{ReadWriteCloser: conn, rest: append([]byte(nil), rest...)}
}

// AcceptSync is the agent side: it waits for a host's SYNC, completes the
// handshake and returns the connection to run yamux on (conn, plus any bytes
// already read past the handshake). It returns when conn fails.
func AcceptSync(conn io.ReadWriteCloser) (io.ReadWriteCloser, error) {
	sc := &scanner{r: conn}
	acked := map[uint64]bool{}
	for {
		tag, nonce, err := sc.next(tagSync, tagGo)
		if err != nil {
			return nil, fmt.Errorf("proto: session sync: %w", err)
		}
		switch {
		case bytes.Equal(tag, tagSync):
			acked[nonce] = true
			if _, err := conn.Write(token(tagAck, nonce)); err != nil {
				return nil, fmt.Errorf("proto: session sync: %w", err)
			}
		case acked[nonce]: // GO for a SYNC we answered
			if _, err := conn.Write(token(tagGoAck, nonce)); err != nil {
				return nil, fmt.Errorf("proto: session sync: %w", err)
			}
			return withRest(conn, sc.buf), nil
		}
	}
}

// ErrSyncClosed reports that the connection ended during the handshake.
var ErrSyncClosed = errors.New("proto: connection closed during session sync")

// DialSync is the host side of the handshake. It resends SYNC (with growing
// zero padding) until the agent answers, so it also works when the agent is
// still booting or still inside a previous session. On ctx's end it closes
// conn to stop. It returns the connection to run yamux on.
func DialSync(ctx context.Context, conn io.ReadWriteCloser) (io.ReadWriteCloser, error) {
	type result struct {
		rest []byte
		err  error
	}
	var (
		mu     sync.Mutex
		nonces = map[uint64]bool{}
	)
	ours := func(n uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		return nonces[n]
	}
	// The reader only reads, so it can never deadlock against the agent
	// writing its answers while we write padding; all writes are ours here.
	acks := make(chan uint64, 1)
	done := make(chan result, 1)
	go func(acks chan<- uint64) {
		sc := &scanner{r: conn}
		for {
			tag, nonce, err := sc.next(tagAck, tagGoAck)
			if err != nil {
				done <- result{err: err}
				return
			}
			if !ours(nonce) {
				continue
			}
			if bytes.Equal(tag, tagGoAck) {
				done <- result{rest: sc.buf}
				return
			}
			select {
			case acks <- nonce:
			default: // one ACK is all the writer needs
			}
		}
	}(acks)
	pendingAck := (<-chan uint64)(acks)

	send := func(pad int, again bool) error {
		var nb [8]byte
		if _, err := rand.Read(nb[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint64(nb[:])
		mu.Lock()
		nonces[n] = true
		mu.Unlock()
		msg := append(make([]byte, pad), token(tagSync, n)...)
		if again {
			msg = append(append(msg, make([]byte, syncAgainGap)...), token(tagSync, n)...)
		}
		_, err := conn.Write(msg)
		return err
	}
	fail := func(err error) (io.ReadWriteCloser, error) {
		conn.Close() // also stops the reader
		<-done
		return nil, err
	}
	if err := send(0, true); err != nil {
		return fail(fmt.Errorf("proto: session sync: %w", err))
	}
	retry, pad, padLeft := syncRetryMin, syncPadMin, syncPadBudget
	timer := time.NewTimer(retry)
	defer timer.Stop()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				conn.Close()
				if errors.Is(r.err, io.EOF) {
					return nil, ErrSyncClosed
				}
				return nil, fmt.Errorf("proto: session sync: %w", r.err)
			}
			return withRest(conn, r.rest), nil
		case <-ctx.Done():
			return fail(ctx.Err())
		case n := <-pendingAck:
			pendingAck = nil // the first ACK decides; stop resending
			timer.Stop()
			if _, err := conn.Write(token(tagGo, n)); err != nil {
				return fail(fmt.Errorf("proto: session sync: %w", err))
			}
		case <-timer.C:
			pad = min(pad, padLeft)
			if err := send(pad, false); err != nil {
				return fail(fmt.Errorf("proto: session sync: %w", err))
			}
			padLeft -= pad
			retry, pad = min(retry*2, syncRetryMax), pad*2
			timer.Reset(retry)
		}
	}
}
