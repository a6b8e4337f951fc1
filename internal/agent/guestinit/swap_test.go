package guestinit

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// silentPort is a fake virtio port on which a host can be replaced by
// another without the agent ever reading 0 — the race a quick reconnect or
// a restore produces on the real port. All hosts write into one pipe the
// agent reads; the agent's writes go to whichever host is current.
type silentPort struct {
	guestIn  net.Conn // agent reads here (deadlines work, as on the real port)
	hostsOut net.Conn // every host writes here
	wmu      sync.Mutex

	mu  sync.Mutex
	cur *io.PipeWriter // the current host's inbound pipe
}

func newSilentPort(t *testing.T) *silentPort {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &silentPort{guestIn: a, hostsOut: b}
}

func (p *silentPort) Read(b []byte) (int, error)         { return p.guestIn.Read(b) }
func (p *silentPort) SetReadDeadline(t time.Time) error  { return p.guestIn.SetReadDeadline(t) }
func (p *silentPort) SetWriteDeadline(t time.Time) error { return nil }

func (p *silentPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	w := p.cur
	p.mu.Unlock()
	if w == nil {
		return len(b), nil
	}
	if _, err := w.Write(b); err != nil {
		return len(b), nil // a vanished host: bytes are lost, as on the port
	}
	return len(b), nil
}

// hostConn is one host's end; closing it only stops its reads.
type hostConn struct {
	p *silentPort
	r *io.PipeReader
}

func (h hostConn) Read(b []byte) (int, error) { return h.r.Read(b) }
func (h hostConn) Write(b []byte) (int, error) {
	h.p.wmu.Lock()
	defer h.p.wmu.Unlock()
	return h.p.hostsOut.Write(b)
}
func (h hostConn) Close() error { return h.r.Close() }

// plug makes a new host current, silently dropping the previous one.
func (p *silentPort) plug() hostConn {
	r, w := io.Pipe()
	p.mu.Lock()
	if p.cur != nil {
		p.cur.Close()
	}
	p.cur = w
	p.mu.Unlock()
	return hostConn{p: p, r: r}
}

func TestServePortSilentHostSwapWithFakePort(t *testing.T) {
	port := newSilentPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvCtx, stopSrv := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ServePort(srvCtx, &agent.Server{}, port) }()

	c1, err := agentclient.Dial(ctx, port.plug())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "f")
	f, err := c1.Open(ctx, p, proto.OpenWrite|proto.OpenCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	fdLink := "/proc/self/fd/" + strconv.Itoa(f.Fd())

	// Host 1 vanishes without the agent noticing; host 2 connects at once.
	c2, err := agentclient.Dial(ctx, port.plug())
	if err != nil {
		t.Fatalf("second host: %v", err)
	}
	if err := c2.Ping(ctx); err != nil {
		t.Fatalf("second host ping: %v", err)
	}
	if target, _ := os.Readlink(fdLink); target == p {
		t.Fatal("first session's handle survived the swap")
	}
	c1.Close()
	c2.Close()
	stopSrv()
	<-done
}
