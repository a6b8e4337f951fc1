package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// writeLog records every Write it gets.
type writeLog struct {
	writes [][]byte
	fail   error
}

func (w *writeLog) Read([]byte) (int, error) { return 0, io.EOF }
func (w *writeLog) Close() error             { return nil }
func (w *writeLog) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func yamuxHeader(typ byte, flags uint16, stream, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[0], h[1] = yamuxVersion, typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], stream)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func TestCoalesceJoinsADataHeaderWithItsBody(t *testing.T) {
	log := &writeLog{}
	c := CoalesceFrames(log)
	hdr, body := yamuxHeader(yamuxTypeData, 0, 3, 5), []byte("hello")
	if n, err := c.Write(hdr); n != len(hdr) || err != nil {
		t.Fatalf("header write = %d, %v", n, err)
	}
	if len(log.writes) != 0 {
		t.Fatalf("the header went out alone: %q", log.writes)
	}
	if n, err := c.Write(body); n != len(body) || err != nil {
		t.Fatalf("body write = %d, %v", n, err)
	}
	if len(log.writes) != 1 || !bytes.Equal(log.writes[0], append(hdr, body...)) {
		t.Fatalf("writes = %q, want one header+body", log.writes)
	}
}

func TestCoalescePassesOtherWritesThrough(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"window update", yamuxHeader(1, 0, 3, 65536)},
		{"ping", yamuxHeader(2, 1, 0, 7)},
		{"go away", yamuxHeader(3, 0, 0, 0)},
		{"data frame without a body (SYN/FIN)", yamuxHeader(yamuxTypeData, 4, 3, 0)},
		{"another protocol version", append([]byte{1}, yamuxHeader(yamuxTypeData, 0, 3, 5)[1:]...)},
		{"not a lone header", []byte("some bytes of a longer write")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &writeLog{}
			c := CoalesceFrames(log)
			if n, err := c.Write(tc.p); n != len(tc.p) || err != nil {
				t.Fatalf("write = %d, %v", n, err)
			}
			if len(log.writes) != 1 || !bytes.Equal(log.writes[0], tc.p) {
				t.Fatalf("writes = %q, want %q at once", log.writes, tc.p)
			}
		})
	}
}

func TestCoalesceSendsABulkBodyOnItsOwn(t *testing.T) {
	log := &writeLog{}
	c := CoalesceFrames(log)
	body := bytes.Repeat([]byte{7}, coalesceMax+1)
	hdr := yamuxHeader(yamuxTypeData, 0, 5, uint32(len(body)))
	c.Write(hdr)
	if n, err := c.Write(body); n != len(body) || err != nil {
		t.Fatalf("body write = %d, %v", n, err)
	}
	if len(log.writes) != 2 || !bytes.Equal(log.writes[0], hdr) || !bytes.Equal(log.writes[1], body) {
		t.Fatalf("got %d writes, want the header then the body", len(log.writes))
	}
	// The next frame is coalesced again.
	c.Write(yamuxHeader(yamuxTypeData, 0, 5, 2))
	c.Write([]byte("ok"))
	if len(log.writes) != 3 || len(log.writes[2]) != yamuxHeaderSize+2 {
		t.Fatalf("writes after a bulk body: %d", len(log.writes))
	}
}

func TestCoalesceReportsAFailedWrite(t *testing.T) {
	boom := errors.New("port gone")
	log := &writeLog{}
	c := CoalesceFrames(log)
	c.Write(yamuxHeader(yamuxTypeData, 0, 3, 2))
	log.fail = boom
	if n, err := c.Write([]byte("hi")); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("write = %d, %v; want 0, %v", n, err, boom)
	}
}

// A yamux session on each end of a coalescing connection carries streams
// as before, and each small data frame reaches the connection in one
// Write.
func TestCoalesceUnderYamux(t *testing.T) {
	a, b := net.Pipe()
	counting := &countWrites{Conn: a}
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.LogOutput = io.Discard
	client, err := yamux.Client(CoalesceFrames(counting), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := yamux.Server(CoalesceFrames(b), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	done := make(chan error, 1)
	go func() {
		st, err := server.AcceptStream()
		if err != nil {
			done <- err
			return
		}
		defer st.Close()
		_, err = io.Copy(st, st) // echo
		done <- err
	}()
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	msgs := []string{"one", "two", string(bytes.Repeat([]byte("x"), 100<<10)), "three"}
	for _, m := range msgs {
		before := counting.n()
		if _, err := st.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if len(m) <= coalesceMax && counting.n()-before != 1 {
			t.Errorf("a %d-byte stream write took %d connection writes, want 1", len(m), counting.n()-before)
		}
		got := make([]byte, len(m))
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(st, got); err != nil || string(got) != m {
			t.Fatalf("echo of %d bytes: %v (equal %v)", len(m), err, string(got) == m)
		}
	}
	st.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the echo stream did not end")
	}
}

// countWrites counts the Writes on a net.Conn.
type countWrites struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countWrites) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return n, err
}

func (c *countWrites) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}
