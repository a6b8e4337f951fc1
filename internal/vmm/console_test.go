package vmm

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

func newTestConsole(t *testing.T, retain int) (*Console, net.Conn) {
	t.Helper()
	guest, host := net.Pipe()
	c := newConsole(host, retain)
	t.Cleanup(func() { guest.Close(); c.Close() })
	return c, guest
}

func TestConsoleReadSinceAndWrite(t *testing.T) {
	c, guest := newTestConsole(t, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := guest.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	data, next, err := c.ReadSince(ctx, 0)
	if err != nil || string(data) != "hello " || next != 6 {
		t.Fatalf("first read: %q %d %v", data, next, err)
	}
	go guest.Write([]byte("world\n"))
	data, next, err = c.ReadSince(ctx, next)
	if err != nil || string(data) != "world\n" || next != 12 {
		t.Fatalf("second read: %q %d %v", data, next, err)
	}

	// Typing into the guest reaches the other end of the socket.
	go c.Write([]byte("ls\n"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(guest, buf); err != nil || string(buf) != "ls\n" {
		t.Fatalf("guest got %q, %v", buf, err)
	}

	// A reader waiting for output is released by the end of the console.
	guest.Close()
	if _, _, err := c.ReadSince(ctx, next); !errors.Is(err, ErrConsoleClosed) {
		t.Fatalf("after close: %v, want ErrConsoleClosed", err)
	}
}

func TestConsoleRetention(t *testing.T) {
	c, guest := newTestConsole(t, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	guest.Write([]byte("0123456789"))
	if _, err := c.WaitFor(ctx, 0, []byte("9")); err != nil {
		t.Fatal(err)
	}
	if got := string(c.Bytes()); got != "23456789" {
		t.Errorf("retained %q, want the last 8 bytes", got)
	}
	if c.Offset() != 10 {
		t.Errorf("offset %d, want 10", c.Offset())
	}
	if got, all := string(c.Last(3)), string(c.Last(100)); got != "789" || all != "23456789" {
		t.Errorf("Last(3) = %q, Last(100) = %q", got, all)
	}
	// Reading from a forgotten offset starts at the oldest retained byte.
	data, next, err := c.ReadSince(ctx, 0)
	if err != nil || string(data) != "23456789" || next != 10 {
		t.Errorf("read from 0: %q %d %v", data, next, err)
	}
}

func TestConsoleWaitForAcrossWrites(t *testing.T) {
	c, guest := newTestConsole(t, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		guest.Write([]byte("boot... MAR"))
		guest.Write([]byte("KER done"))
	}()
	end, err := c.WaitFor(ctx, 0, []byte("MARKER"))
	if err != nil || end != int64(len("boot... MARKER")) {
		t.Fatalf("WaitFor: %d %v", end, err)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := c.WaitFor(short, end, []byte("never")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WaitFor: %v", err)
	}
}

func TestTailLines(t *testing.T) {
	got := tailLines([]byte("a\r\nb\r\nc\r\n"), 2)
	if !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("got %q", got)
	}
	got = tailLines([]byte("a\nb\npartial"), 5)
	if !slices.Equal(got, []string{"a", "b", "partial"}) {
		t.Errorf("got %q", got)
	}
	if tailLines(nil, 3) != nil || tailLines([]byte("x"), 0) != nil {
		t.Error("empty cases")
	}
}

func TestConsoleTailWithin(t *testing.T) {
	c, guest := newTestConsole(t, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go guest.Write([]byte("first line\r\nsecond\r\nthird\r\n"))
	if _, err := c.WaitFor(ctx, 0, []byte("third\r\n")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		n, max int
		want   []string
	}{
		{10, 1 << 10, []string{"first line", "second", "third"}}, // everything fits
		{2, 1 << 10, []string{"second", "third"}},                // the line bound wins
		{10, 15, []string{"second", "third"}},                    // "first line" is cut: left out
		{10, 8, []string{"third"}},                               // cut inside the previous line's CRLF
		{10, 7, []string{"third"}},                               // cut exactly at a line start
		{10, 5, []string{"ird"}},                                 // only a piece of one line fits (raw bytes count)
		{10, 0, nil},
	}
	for _, tc := range cases {
		if got := c.TailWithin(tc.n, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("TailWithin(%d, %d) = %q, want %q", tc.n, tc.max, got, tc.want)
		}
	}
	// A cut inside a multi-byte character starts at the next character.
	go guest.Write([]byte("ééé"))
	if _, err := c.WaitFor(ctx, 0, []byte("ééé")); err != nil {
		t.Fatal(err)
	}
	if got := c.TailWithin(10, 5); !slices.Equal(got, []string{"éé"}) {
		t.Errorf("cut in a character: %q", got)
	}
	guest.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the console ended")
	}
}

func TestConsoleMarkBoot(t *testing.T) {
	c, guest := newTestConsole(t, 1<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.BootStart() != 0 {
		t.Fatalf("boot start before any reset = %d", c.BootStart())
	}
	go guest.Write([]byte("first boot\n"))
	if _, err := c.WaitFor(ctx, 0, []byte("first boot\n")); err != nil {
		t.Fatal(err)
	}
	c.MarkBoot()
	if got := c.BootStart(); got != int64(len("first boot\n")) {
		t.Fatalf("boot start after a reset = %d, want %d", got, len("first boot\n"))
	}
}

// An offset the reader has not reached yet (an expect's `since` past the
// end) matches only what comes from there on.
func TestConsoleWaitForFromAheadOffset(t *testing.T) {
	c, guest := newTestConsole(t, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	guest.Write([]byte("old-MARK "))
	if _, err := c.WaitFor(ctx, 0, []byte("old")); err != nil {
		t.Fatal(err)
	}
	go guest.Write([]byte("xyzMARK"))
	end, err := c.WaitFor(ctx, 12, []byte("MARK"))
	if err != nil || end != 16 {
		t.Fatalf("WaitFor from 12: %d %v, want 16", end, err)
	}
}
