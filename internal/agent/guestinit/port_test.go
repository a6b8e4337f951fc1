package guestinit

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// fakePort behaves like the guest end of a virtio-serial port (the real one
// is exercised by cmd/provium-agent's QEMU tests): with no host
// connected, reads return 0 at once and writes vanish; a connected host is
// the other end of a net.Pipe.
type fakePort struct {
	mu        sync.Mutex
	cur       net.Conn
	idleReads int
}

func (f *fakePort) conn() net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *fakePort) Read(p []byte) (int, error) {
	c := f.conn()
	if c == nil {
		f.mu.Lock()
		f.idleReads++
		f.mu.Unlock()
		return 0, io.EOF
	}
	n, err := c.Read(p)
	if errors.Is(err, io.EOF) {
		f.mu.Lock()
		if f.cur == c {
			f.cur = nil
		}
		f.mu.Unlock()
	}
	return n, err
}

func (f *fakePort) Write(p []byte) (int, error) {
	if c := f.conn(); c != nil {
		return c.Write(p)
	}
	return len(p), nil
}

func (f *fakePort) SetReadDeadline(t time.Time) error {
	if c := f.conn(); c != nil {
		return c.SetReadDeadline(t)
	}
	return nil
}

func (f *fakePort) SetWriteDeadline(t time.Time) error {
	if c := f.conn(); c != nil {
		return c.SetWriteDeadline(t)
	}
	return nil
}

// connect plugs a new host in and returns a client session on it.
func (f *fakePort) connect(t *testing.T) *agentclient.Client {
	t.Helper()
	host, guest := net.Pipe()
	f.mu.Lock()
	f.cur = guest
	f.mu.Unlock()
	c, err := agentclient.Dial(context.Background(), host)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (f *fakePort) waitIdle(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	start := f.idleReads
	f.mu.Unlock()
	for i := 0; i < 1000; i++ {
		f.mu.Lock()
		n, cur := f.idleReads, f.cur
		f.mu.Unlock()
		if cur == nil && n > start+1 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("agent never went back to polling the idle port")
}

func TestServePortReconnectWithFakePort(t *testing.T) {
	port := &fakePort{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePort(ctx, &agent.Server{AgentVersion: "t"}, port) }()

	// No host yet: the agent keeps polling and neither exits nor errors.
	port.waitIdle(t)

	c1 := port.connect(t)
	if err := c1.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "f")
	f, err := c1.Open(ctx, p, proto.OpenWrite|proto.OpenCreate, 0)
	if err != nil {
		t.Fatal(err)
	}
	fdLink := "/proc/self/fd/" + strconv.Itoa(f.Fd())
	c1.Close()
	port.waitIdle(t)
	if target, _ := os.Readlink(fdLink); target == p {
		t.Fatalf("handle of the dead session still open")
	}

	c2 := port.connect(t)
	if err := c2.Ping(ctx); err != nil {
		t.Fatalf("second session: %v", err)
	}
	f2, err := c2.Open(ctx, p, proto.OpenRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	fdLink = "/proc/self/fd/" + strconv.Itoa(f2.Fd())
	// Detach (before a snapshot): the agent ends the session itself.
	if err := c2.Detach(ctx); err != nil {
		t.Fatalf("detach: %v", err)
	}
	port.waitIdle(t)
	if target, _ := os.Readlink(fdLink); target == p {
		t.Fatalf("handle survived detach")
	}
	c3 := port.connect(t)
	if err := c3.WriteFile(ctx, p, []byte("again")); err != nil {
		t.Fatalf("session after detach: %v", err)
	}
	c3.Close()

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ServePort returned %v", err)
	}
}

func TestFindPort(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	for port, name := range map[string]string{"vport0p0": "org.qemu.console", "vport1p2": AgentPortName + "\n"} {
		d := filepath.Join(sys, "class", "virtio-ports", port)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "name"), []byte(name), 0o644)
	}
	got, err := FindPort(sys, dev, AgentPortName)
	if err != nil || got != filepath.Join(dev, "vport1p2") {
		t.Fatalf("FindPort = %q, %v", got, err)
	}
	if _, err := FindPort(sys, dev, "other"); !errors.Is(err, ErrPortNotFound) {
		t.Fatalf("missing port: %v", err)
	}
	// A udev-style symlink wins when present.
	os.MkdirAll(filepath.Join(dev, "virtio-ports"), 0o755)
	link := filepath.Join(dev, "virtio-ports", AgentPortName)
	os.WriteFile(link, nil, 0o644)
	if got, _ := FindPort(sys, dev, AgentPortName); got != link {
		t.Fatalf("FindPort with /dev/virtio-ports = %q", got)
	}
}

func TestPowerButton(t *testing.T) {
	ev := make([]byte, eventSize)
	ev[16], ev[18], ev[20] = evKey, keyPower, 1
	if !IsPowerPress(ev) {
		t.Fatal("press not recognised")
	}
	ev[20] = 0 // release
	if IsPowerPress(ev) {
		t.Fatal("release taken as press")
	}
	sys, dev := t.TempDir(), t.TempDir()
	for ev, name := range map[string]string{"event0": "AT Translated Set 2 keyboard", "event1": "Power Button\n"} {
		d := filepath.Join(sys, "class", "input", ev, "device")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "name"), []byte(name), 0o644)
	}
	if got, ok := FindPowerButton(sys, dev); !ok || got != filepath.Join(dev, "input", "event1") {
		t.Fatalf("FindPowerButton = %q %v", got, ok)
	}
}

func TestOpenPort(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	d := filepath.Join(sys, "class", "virtio-ports", "vport2p1")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "name"), []byte(AgentPortName+"\n"), 0o644)
	os.WriteFile(filepath.Join(d, "dev"), []byte("1:3\n"), 0o644) // /dev/null's numbers

	// No node in dev: one is made from sysfs's major:minor.
	f, err := OpenPort(sys, dev, AgentPortName)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("mknod not permitted here")
	}
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 1<<8|3 {
		t.Fatalf("opened node mode %o rdev %x: %v", st.Mode, st.Rdev, err)
	}
	f.Close()

	// An existing node is opened as is.
	os.WriteFile(filepath.Join(dev, "vport2p1"), nil, 0o600)
	f, err = OpenPort(sys, dev, AgentPortName)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != filepath.Join(dev, "vport2p1") {
		t.Fatalf("opened %s", f.Name())
	}
	f.Close()
}
