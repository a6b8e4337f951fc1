package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestFrameRoundTripAndEOF(t *testing.T) {
	var buf bytes.Buffer
	in := ExecResult{ExitCode: 1, Stdout: []byte("a\x00b"), Status: StatusExited}
	if err := WriteFrame(&buf, in); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(buf.Bytes()); int(got) != buf.Len()-4 {
		t.Fatalf("length prefix %d, body %d", got, buf.Len()-4)
	}
	var out ExecResult
	if err := ReadFrame(&buf, &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Stdout) != "a\x00b" || out.ExitCode != 1 {
		t.Fatalf("got %+v", out)
	}
	if err := ReadFrame(&buf, &out); err != io.EOF {
		t.Fatalf("want io.EOF at end, got %v", err)
	}
}

func TestFrameBounds(t *testing.T) {
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, MaxFrameSize+1)
	if _, err := ReadRawFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("want ErrFrameTooLarge, got %v", err)
	}
	if err := WriteRawFrame(io.Discard, make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("want ErrFrameTooLarge on write, got %v", err)
	}
	// A truncated body is an error, not a clean EOF.
	binary.BigEndian.PutUint32(hdr, 10)
	if _, err := ReadRawFrame(bytes.NewReader(append(hdr, 1, 2))); err == nil || err == io.EOF {
		t.Fatalf("want truncation error, got %v", err)
	}
}

func TestErrorText(t *testing.T) {
	e := ErrorFrom(&wrapped{syscall.ENOENT})
	if e.Error() != "No such file or directory (os error 2, ENOENT) (errno 2)" || e.Errno != 2 {
		t.Fatalf("got %q errno %d", e.Error(), e.Errno)
	}
	if got := ErrnoError(syscall.EIO).Error(); got != "Input/output error (os error 5, EIO) (errno 5)" {
		t.Fatalf("got %q", got)
	}
	if got := ErrorFrom(errors.New("plain")); got.Errno != 0 || got.Error() != "plain" {
		t.Fatalf("got %+v", got)
	}
}

// TestErrnoTextMatchesUpstreamSuites reads an OS error the two ways suites
// written for upstream do: a substring `os error 95`, and the number after
// `errno ` (Lua's `tostring(err):match("errno (%d+)")`).
func TestErrnoTextMatchesUpstreamSuites(t *testing.T) {
	text := "worker:run: " + ErrnoError(syscall.EOPNOTSUPP).Error()
	if !strings.Contains(text, "os error 95") || !strings.Contains(text, "errno 95") {
		t.Fatalf("%q lacks `os error 95` or `errno 95`", text)
	}
	m := regexp.MustCompile(`errno (\d+)`).FindStringSubmatch(ErrnoError(syscall.EACCES).Error())
	if m == nil || m[1] != "13" {
		t.Fatalf("errno (%%d+) on EACCES: got %q", m)
	}
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "op: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }
