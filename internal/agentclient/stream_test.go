package agentclient_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// collect reads from s until it holds want bytes (or fails).
func collect(t *testing.T, s *agentclient.Stream, want int) []byte {
	t.Helper()
	var out bytes.Buffer
	for out.Len() < want {
		b, err := s.Next(ctx(t))
		if err != nil {
			t.Fatalf("stream: %v (have %q)", err, out.Bytes())
		}
		out.Write(b)
	}
	return out.Bytes()
}

// quiet checks that nothing arrives within a short window (Next returns
// the window's deadline error, and nothing is lost by it).
func quiet(t *testing.T, s *agentclient.Stream) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx(t), 150*time.Millisecond)
	defer cancel()
	if b, err := s.Next(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected %q %v", b, err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestTailFileStartForms(t *testing.T) {
	c := newAgent(t)
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		start  string
		offset int64
		want   string
	}{
		{proto.TailBeginning, 0, "0123456789"},
		{"start", 0, "0123456789"},
		{proto.TailOffset, 4, "456789"},
		{proto.TailOffset, -3, "789"},
		{proto.TailOffset, -100, "0123456789"},
	}
	for _, tc := range cases {
		s, err := c.TailFile(ctx(t), path, tc.start, tc.offset)
		if err != nil {
			t.Fatalf("%s %d: %v", tc.start, tc.offset, err)
		}
		if got := collect(t, s, len(tc.want)); string(got) != tc.want {
			t.Fatalf("%s %d: got %q want %q", tc.start, tc.offset, got, tc.want)
		}
		s.Close()
	}
	end, err := c.TailFile(ctx(t), path, proto.TailEnd, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	quiet(t, end)
	appendFile(t, path, "ab")
	if got := collect(t, end, 2); string(got) != "ab" {
		t.Fatalf("end: got %q", got)
	}
	// Files never reach EOF: more growth is followed.
	appendFile(t, path, "cd")
	if got := collect(t, end, 2); string(got) != "cd" {
		t.Fatalf("growth: got %q", got)
	}
	_, err = c.TailFile(ctx(t), filepath.Join(t.TempDir(), "missing"), proto.TailEnd, 0)
	wantErrno(t, err, syscall.ENOENT, "ENOENT")
	if _, err := c.TailFile(ctx(t), path, "middle", 0); err == nil {
		t.Fatal("bad start accepted")
	}
}

func TestFileTailStream(t *testing.T) {
	c := newAgent(t)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := c.Open(ctx(t), path, proto.OpenRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := f.Read(ctx(t), 2); err != nil || string(b) != "ab" {
		t.Fatalf("read %q %v", b, err)
	}
	s, err := f.TailStream(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := collect(t, s, 4); string(got) != "cdef" {
		t.Fatalf("tail_stream got %q", got)
	}
	appendFile(t, path, "gh")
	if got := collect(t, s, 2); string(got) != "gh" {
		t.Fatalf("growth got %q", got)
	}
	if off, err := f.Tell(ctx(t)); err != nil || off != 2 {
		t.Fatalf("cursor moved to %d (%v)", off, err)
	}
}

func TestFdStream(t *testing.T) {
	c := newAgent(t)
	res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_PIPE2, Args: [6]uint64{0, unix.O_CLOEXEC}, Bufs: [][]byte{make([]byte, 8)}, Ptrs: []int{0}})
	if err != nil || res.Ret != 0 {
		t.Fatalf("pipe2: %+v %v", res, err)
	}
	rfd := int(binary.LittleEndian.Uint32(res.OutBufs[0]))
	wfd := uint64(binary.LittleEndian.Uint32(res.OutBufs[0][4:]))
	s, err := c.FdStream(ctx(t), rfd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write := func(data string) {
		if res, err := c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_WRITE, Args: [6]uint64{wfd, 0, uint64(len(data))}, Bufs: [][]byte{[]byte(data)}, Ptrs: []int{1}}); err != nil || res.Ret != int64(len(data)) {
			t.Fatalf("write: %+v %v", res, err)
		}
	}
	write("hello")
	if got := collect(t, s, 5); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}
	write("!")
	if got := collect(t, s, 1); string(got) != "!" {
		t.Fatalf("got %q", got)
	}
	// The stream holds its own duplicate, so closing the agent's write end
	// is what ends it; the read end is closed afterwards.
	c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{wfd}})
	if b, err := s.Next(ctx(t)); !errors.Is(err, io.EOF) {
		t.Fatalf("after writer closed: %q %v", b, err)
	}
	c.Syscall(ctx(t), proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{uint64(rfd)}})

	// A regular file fd is followed, not ended.
	path := filepath.Join(t.TempDir(), "reg")
	os.WriteFile(path, []byte("xy"), 0o644)
	f, err := c.Open(ctx(t), path, proto.OpenRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.FdStream(ctx(t), f.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if got := collect(t, rs, 2); string(got) != "xy" {
		t.Fatalf("regular fd got %q", got)
	}
	quiet(t, rs)
	_, err = c.FdStream(ctx(t), 1<<20)
	wantErrno(t, err, syscall.EBADF, "EBADF")
}

// TestStreamHostCloseStopsAgent closes a tail the host never read from
// while the agent keeps producing; the session must still end cleanly.
func TestStreamHostCloseStopsAgent(t *testing.T) {
	c := newAgent(t)
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, bytes.Repeat([]byte("z"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := c.TailFile(ctx(t), path, proto.TailBeginning, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(ctx(t)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
