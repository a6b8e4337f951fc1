package proto

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// splitConn reads from r and writes to w: lets a test put bytes in front of
// what the peer sends.
type splitConn struct {
	io.Reader
	io.Writer
	c io.Closer
}

func (s splitConn) Close() error { return s.c.Close() }

func syncPair(t *testing.T, agentSide func(net.Conn) io.ReadWriteCloser) (host, agent io.ReadWriteCloser) {
	t.Helper()
	h, a := net.Pipe()
	t.Cleanup(func() { h.Close(); a.Close() })
	type res struct {
		c   io.ReadWriteCloser
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := AcceptSync(agentSide(a))
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc, err := DialSync(ctx, h)
	if err != nil {
		t.Fatalf("DialSync: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("AcceptSync: %v", r.err)
	}
	return hc, r.c
}

// checkClean checks that bytes after the handshake pass unchanged both ways.
func checkClean(t *testing.T, host, agent io.ReadWriteCloser) {
	t.Helper()
	go host.Write([]byte("from-host"))
	got := make([]byte, 9)
	if _, err := io.ReadFull(agent, got); err != nil || string(got) != "from-host" {
		t.Fatalf("agent read %q %v", got, err)
	}
	go agent.Write([]byte("from-agent"))
	got = make([]byte, 10)
	if _, err := io.ReadFull(host, got); err != nil || string(got) != "from-agent" {
		t.Fatalf("host read %q %v", got, err)
	}
}

func TestSyncClean(t *testing.T) {
	host, agent := syncPair(t, func(c net.Conn) io.ReadWriteCloser { return c })
	checkClean(t, host, agent)
}

// Stale bytes from an earlier connection, including tokens of another
// host, are skipped.
func TestSyncSkipsStaleBytes(t *testing.T) {
	stale := append([]byte("old yamux bytes\x00\x01"), token(tagSync, 7)...)
	stale = append(stale, token(tagGo, 99)...)
	stale = append(stale, []byte("PRVMSY")...) // a torn token
	host, agent := syncPair(t, func(c net.Conn) io.ReadWriteCloser {
		return splitConn{io.MultiReader(bytes.NewReader(stale), c), c, c}
	})
	checkClean(t, host, agent)
}

// The agent's old session eats the first SYNC (as yamux would before
// failing on it); the host's resend gets through.
func TestSyncFirstSyncEatenByOldSession(t *testing.T) {
	host, agent := syncPair(t, func(c net.Conn) io.ReadWriteCloser {
		eaten := make([]byte, tokenLen)
		if _, err := io.ReadFull(c, eaten); err != nil || !bytes.HasPrefix(eaten, tagSync) {
			t.Errorf("first bytes %q %v", eaten, err)
		}
		return c
	})
	checkClean(t, host, agent)
}

func TestDialSyncCancelled(t *testing.T) {
	h, a := net.Pipe()
	defer a.Close()
	go io.Copy(io.Discard, a) // an agent that never answers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := DialSync(ctx, h); err != context.DeadlineExceeded {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
}
