package guestinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/proto"
)

// AgentPortName is the virtserialport name the host gives the agent channel.
const AgentPortName = "org.provium.agent.0"

// ErrPortNotFound means no virtio port with the wanted name exists (yet).
var ErrPortNotFound = errors.New("guestinit: agent port not found")

// FindPort returns the device node of the virtio-serial port called name.
// There is no udev in a standalone guest, so /dev/virtio-ports/<name> may
// be missing; sysfs names the vportNpM node instead.
func FindPort(sysRoot, devRoot, name string) (string, error) {
	if p := filepath.Join(devRoot, "virtio-ports", name); fileExists(p) {
		return p, nil
	}
	files, err := filepath.Glob(filepath.Join(sysRoot, "class", "virtio-ports", "*", "name"))
	if err != nil {
		return "", fmt.Errorf("guestinit: scan virtio ports: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(b)) != name {
			continue
		}
		return filepath.Join(devRoot, filepath.Base(filepath.Dir(f))), nil
	}
	return "", ErrPortNotFound
}

// OpenPort finds the port called name and opens it read-write. When sysfs
// knows the port but /dev has no node for it (chain mode before the real
// init mounted devtmpfs), a private node is made from sysfs's major:minor,
// opened and unlinked again, so the agent mounts nothing.
func OpenPort(sysRoot, devRoot, name string) (*os.File, error) {
	p, err := FindPort(sysRoot, devRoot, name)
	if err != nil {
		return nil, err
	}
	if fileExists(p) {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("guestinit: open agent port: %w", err)
		}
		return f, nil
	}
	b, err := os.ReadFile(filepath.Join(sysRoot, "class", "virtio-ports", filepath.Base(p), "dev"))
	if err != nil {
		return nil, fmt.Errorf("guestinit: agent port %s has no device node: %w", p, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return nil, fmt.Errorf("guestinit: agent port dev %q: %w", b, err)
	}
	node := filepath.Join(os.TempDir(), ".provium-agent-port")
	if !fileExists(os.TempDir()) {
		node = "/.provium-agent-port"
	}
	_ = os.Remove(node)
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return nil, fmt.Errorf("guestinit: mknod agent port: %w", err)
	}
	defer os.Remove(node)
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("guestinit: open agent port: %w", err)
	}
	return f, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Port is the agent channel device. *os.File on a virtio port satisfies it
// (the port is pollable, so deadlines work).
type Port interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Idle-poll backoff while no host is connected: read() on the port then
// returns 0 at once, again and again, so the agent sleeps between tries.
const (
	idleMinSleep = 2 * time.Millisecond
	idleMaxSleep = 20 * time.Millisecond
)

// SessionConn adapts a Port to one yamux session. Until the first byte
// arrives, a 0-byte read means "no host yet" and is retried with a short
// sleep; after that it means the host went away and is reported as EOF,
// which ends the session. Close does not close the port: the next session
// reuses it.
type SessionConn struct {
	port Port

	mu       sync.Mutex
	started  bool
	closed   bool
	closedCh chan struct{}
	hardErr  error
	inflight sync.WaitGroup
}

// NewSessionConn starts a session view of port.
func NewSessionConn(port Port) *SessionConn {
	return &SessionConn{port: port, closedCh: make(chan struct{})}
}

var errConnClosed = errors.New("guestinit: session connection closed")

func (c *SessionConn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.inflight.Add(1)
	return true
}

// Read implements io.Reader with the idle/hang-up rules above.
func (c *SessionConn) Read(p []byte) (int, error) {
	if !c.enter() {
		return 0, errConnClosed
	}
	defer c.inflight.Done()
	sleep := idleMinSleep
	for {
		n, err := c.port.Read(p)
		if n > 0 {
			c.mu.Lock()
			c.started = true
			c.mu.Unlock()
			return n, nil
		}
		c.mu.Lock()
		closed, started := c.closed, c.started
		c.mu.Unlock()
		if closed {
			return 0, errConnClosed
		}
		if err != nil && !errors.Is(err, io.EOF) {
			c.mu.Lock()
			c.hardErr = err
			c.mu.Unlock()
			return 0, err
		}
		if started {
			return 0, io.EOF
		}
		select {
		case <-c.closedCh:
			return 0, errConnClosed
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, idleMaxSleep)
	}
}

// Write implements io.Writer.
func (c *SessionConn) Write(p []byte) (int, error) {
	if !c.enter() {
		return 0, errConnClosed
	}
	defer c.inflight.Done()
	return c.port.Write(p)
}

// Close ends this session's use of the port. It interrupts blocked reads
// and writes through deadlines and waits for them, so no goroutine of the
// dead session can steal bytes meant for the next one.
func (c *SessionConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closedCh)
	c.mu.Unlock()
	past := time.Unix(1, 0)
	rerr := c.port.SetReadDeadline(past)
	werr := c.port.SetWriteDeadline(past)
	if rerr == nil && werr == nil {
		c.inflight.Wait()
		_ = c.port.SetReadDeadline(time.Time{})
		_ = c.port.SetWriteDeadline(time.Time{})
	}
	return nil
}

// HardErr is the port error (not a hang-up) that ended the session, if any;
// the caller then reopens the port.
func (c *SessionConn) HardErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hardErr
}

// AnnounceRestart writes the restart burst (proto.RestartBurstLen) so a
// host still in the dead agent's session notices. A host that is not
// reading cannot block the agent: the write gives up after timeout.
func AnnounceRestart(port Port, timeout time.Duration) error {
	burst := bytes.Repeat([]byte{proto.RestartBurstByte}, proto.RestartBurstLen)
	if err := port.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("guestinit: announce restart: %w", err)
	}
	_, err := port.Write(burst)
	if derr := port.SetWriteDeadline(time.Time{}); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("guestinit: announce restart: %w", err)
	}
	return nil
}

// ServePort serves sessions on port one after another until ctx ends or
// the port fails hard (the caller reopens it and calls again).
func ServePort(ctx context.Context, srv *agent.Server, port Port) error {
	for ctx.Err() == nil {
		conn := NewSessionConn(port)
		if err := srv.ServeSession(ctx, conn); err != nil {
			return err
		}
		if err := conn.HardErr(); err != nil {
			return fmt.Errorf("guestinit: agent port: %w", err)
		}
	}
	return ctx.Err()
}
