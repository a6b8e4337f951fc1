package vmm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ConsoleRetain is how much recent console output a Console keeps in memory.
const ConsoleRetain = 16 << 20

// Console is the live serial console (ttyS0) of a machine: everything the
// guest printed (the last ConsoleRetain bytes of it), a way to wait for new
// output, and a way to type into the guest.
//
// Readers use offsets into the console's whole history rather than
// per-subscriber channels: a slow reader loses nothing that is still retained
// and never slows the guest, and no goroutine exists per reader.
type Console struct {
	conn   net.Conn
	retain int

	mu      sync.Mutex
	buf     []byte
	start   int64         // history offset of buf[0]
	boot    int64         // history offset where the current boot began (MarkBoot)
	changed chan struct{} // closed and replaced on every append and at end
	ended   bool
	endErr  error

	done chan struct{} // closed when the pump has stopped
}

// ErrConsoleClosed is returned by ReadSince once the console has ended and
// every byte was read.
var ErrConsoleClosed = errors.New("console closed")

func newConsole(conn net.Conn, retain int) *Console {
	c := &Console{conn: conn, retain: retain, changed: make(chan struct{}), done: make(chan struct{})}
	go c.pump()
	return c
}

// pump owns the read side: it must drain continuously, because a full socket
// makes QEMU's serial device stall the guest.
func (c *Console) pump() {
	defer close(c.done)
	p := make([]byte, 64<<10)
	for {
		n, err := c.conn.Read(p)
		if n > 0 {
			c.append(p[:n])
		}
		if err != nil {
			c.mu.Lock()
			c.ended = true
			if !errors.Is(err, net.ErrClosed) {
				c.endErr = err
			}
			close(c.changed)
			c.mu.Unlock()
			return
		}
	}
}

func (c *Console) append(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - c.retain; over > 0 {
		// Copy down rather than reslice so the old array can be freed.
		c.buf = append(c.buf[:0:0], c.buf[over:]...)
		c.start += int64(over)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// Bytes returns a copy of the retained output.
func (c *Console) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf)
}

// Last returns a copy of the last n retained bytes (all of them when fewer
// are retained), without copying the rest.
func (c *Console) Last(n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf[max(len(c.buf)-n, 0):])
}

// Offset is the history offset just past the last byte received; pass it to
// ReadSince to get only what comes next.
func (c *Console) Offset() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start + int64(len(c.buf))
}

// ReadSince returns the output after history offset off, waiting until there
// is some, the console ends (ErrConsoleClosed) or ctx is done. If off is
// older than what is retained, it reads from the oldest retained byte. next is
// the offset to pass on the following call.
func (c *Console) ReadSince(ctx context.Context, off int64) (data []byte, next int64, err error) {
	for {
		c.mu.Lock()
		end := c.start + int64(len(c.buf))
		if off < c.start {
			off = c.start
		}
		if off < end {
			data = bytes.Clone(c.buf[off-c.start:])
			c.mu.Unlock()
			return data, end, nil
		}
		if c.ended {
			c.mu.Unlock()
			return nil, off, ErrConsoleClosed
		}
		wait := c.changed
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, off, ctx.Err()
		}
	}
}

// WaitFor waits until the output after off contains needle and returns the
// offset just past it.
func (c *Console) WaitFor(ctx context.Context, off int64, needle []byte) (int64, error) {
	for {
		c.mu.Lock()
		if off < c.start {
			off = c.start
		}
		// off may lie ahead of what arrived yet (an expect's since).
		if rel := off - c.start; rel <= int64(len(c.buf)) {
			if i := bytes.Index(c.buf[rel:], needle); i >= 0 {
				end := off + int64(i+len(needle))
				c.mu.Unlock()
				return end, nil
			}
		}
		// Keep the tail that could be the start of a match.
		if end := c.start + int64(len(c.buf)) - int64(len(needle)) + 1; end > off {
			off = end
		}
		ended, wait := c.ended, c.changed
		c.mu.Unlock()
		if ended {
			return off, fmt.Errorf("waiting for %q: %w", needle, ErrConsoleClosed)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return off, fmt.Errorf("waiting for %q: %w", needle, ctx.Err())
		}
	}
}

// Write types p into the guest's serial console.
func (c *Console) Write(p []byte) (int, error) {
	n, err := c.conn.Write(p)
	if err != nil {
		return n, fmt.Errorf("writing to console: %w", err)
	}
	return n, nil
}

// Tail returns the last n lines of the retained output (a trailing partial
// line counts as a line).
func (c *Console) Tail(n int) []string {
	return tailLines(c.Bytes(), n)
}

// TailWithin is Tail(n) bounded to the last maxBytes bytes of the raw
// output: a line the byte bound cuts is left out, unless it is the only
// one, which is then kept from a UTF-8 boundary on.
func (c *Console) TailWithin(n, maxBytes int) []string {
	if maxBytes <= 0 {
		return nil
	}
	b := c.Last(maxBytes + 1)
	if len(b) <= maxBytes {
		return tailLines(b, n)
	}
	cutAtLineStart := b[0] == '\n'
	b = b[1:]
	if !cutAtLineStart {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && len(bytes.TrimRight(b[i+1:], "\r\n")) > 0 {
			b = b[i+1:]
		} else {
			for len(b) > 0 && b[0]&0xC0 == 0x80 {
				b = b[1:]
			}
		}
	}
	return tailLines(b, n)
}

// MarkBoot records that a new boot of the guest starts now (a reset of
// the same QEMU): BootStart is the current offset from here on.
func (c *Console) MarkBoot() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.boot = c.start + int64(len(c.buf))
}

// BootStart is the history offset where the current boot's output
// begins: 0, or where the last MarkBoot was.
func (c *Console) BootStart() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boot
}

// Done is closed once the console has ended (QEMU closed it) and every
// byte it sent is retained.
func (c *Console) Done() <-chan struct{} { return c.done }

// Close disconnects from the console and waits for the pump to stop.
func (c *Console) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func tailLines(b []byte, n int) []string {
	if n <= 0 {
		return nil
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return nil
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out
}
