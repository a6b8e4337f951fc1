package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "C=3=x"}, map[string]string{"B": "new", "D": "4"})
	slices.Sort(got)
	want := []string{"A=1", "B=new", "C=3=x", "D=4"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if got := mergeEnv(nil, map[string]string{"X": "y"}); !slices.Equal(got, []string{"X=y"}) {
		t.Fatalf("cleared env: %v", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	env := []string{"PATH=/nonexistent:" + dir}
	if p, err := lookPath("tool", env); err != nil || p != exe {
		t.Fatalf("lookPath tool = %q %v", p, err)
	}
	if _, err := lookPath("adir", env); proto.ErrorFrom(err).Name != "ENOENT" {
		t.Fatalf("directory found as a program: %v", err)
	}
	if p, err := lookPath("./rel/x", env); err != nil || p != "./rel/x" {
		t.Fatalf("path with slash = %q %v", p, err)
	}
	if _, err := lookPath("tool", []string{"PATH=/nonexistent"}); proto.ErrorFrom(err).Name != "ENOENT" {
		t.Fatalf("want ENOENT, got %v", err)
	}
	// No PATH at all (PID 1 environment): the standard directories apply.
	if p, err := lookPath("sh", nil); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Fatalf("default PATH lookup = %q %v", p, err)
	}
}

func TestOpenFlags(t *testing.T) {
	cases := []struct {
		m    proto.OpenMode
		want int
	}{
		{proto.OpenRead, unix.O_RDONLY},
		{proto.OpenWrite, unix.O_WRONLY},
		{proto.OpenRead | proto.OpenWrite, unix.O_RDWR},
		{proto.OpenAppend, unix.O_WRONLY | unix.O_APPEND},
		{proto.OpenRead | proto.OpenAppend, unix.O_RDWR | unix.O_APPEND},
		{proto.OpenWrite | proto.OpenCreate | proto.OpenExclusive | proto.OpenTruncate, unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC},
	}
	for _, c := range cases {
		got, err := openFlags(c.m)
		if err != nil || got != c.want|unix.O_CLOEXEC {
			t.Errorf("openFlags(%b) = %#x %v, want %#x", c.m, got, err, c.want|unix.O_CLOEXEC)
		}
	}
	if _, err := openFlags(proto.OpenCreate); err == nil {
		t.Fatal("create without read/write accepted")
	}
}

func TestCappedBuffer(t *testing.T) {
	c := &cappedBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
	}
	if c.buf.String() != "abcde" {
		t.Fatalf("kept %q", c.buf.String())
	}
}

func TestParentDir(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "/a", "/a/b/": "/a", "/a": "/", "rel": "", "x/y": "x"} {
		if got := parentDir(in); got != want {
			t.Errorf("parentDir(%q) = %q, want %q", in, got, want)
		}
	}
}

// rawCall sends one request on a new stream and returns the response.
func rawCall(t *testing.T, mux *yamux.Session, req proto.Request) proto.Response {
	t.Helper()
	st, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := proto.WriteFrame(st, req); err != nil {
		t.Fatal(err)
	}
	var resp proto.Response
	if err := proto.ReadFrame(st, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestProtocolErrors(t *testing.T) {
	host, guest := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- (&Server{}).ServeSession(context.Background(), guest) }()
	synced, err := proto.DialSync(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	mux, err := yamux.Client(synced, YamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		mux.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	resp := rawCall(t, mux, proto.Request{Op: "frobnicate"})
	if resp.Err == nil || resp.Err.Message != "unknown op `frobnicate`" || resp.Err.Errno != 0 {
		t.Fatalf("unknown op: %+v", resp.Err)
	}
	notPath, _ := proto.Marshal("just a string")
	resp = rawCall(t, mux, proto.Request{Op: proto.OpStat, Body: notPath})
	if resp.Err == nil || !strings.Contains(resp.Err.Message, "bad request") {
		t.Fatalf("bad body: %+v", resp.Err)
	}
	resp = rawCall(t, mux, proto.Request{Op: proto.OpStat, Body: []byte{0xc1}})
	if resp.Err == nil || !strings.Contains(resp.Err.Message, "bad request") {
		t.Fatalf("undecodable frame: %+v", resp.Err)
	}
	inner, _ := proto.Marshal(proto.BatchReq{})
	body, _ := proto.Marshal(proto.BatchReq{Ops: []proto.Request{{Op: proto.OpBatch, Body: inner}, {Op: proto.OpPing}}})
	resp = rawCall(t, mux, proto.Request{Op: proto.OpBatch, Body: body})
	var br proto.BatchResp
	if resp.Err != nil || proto.Unmarshal(resp.Body, &br) != nil || len(br.Results) != 2 {
		t.Fatalf("batch: %+v", resp)
	}
	if br.Results[0].Err == nil || br.Results[1].Err != nil {
		t.Fatalf("nested batch must fail alone: %+v", br.Results)
	}
	// Hello reports this agent and kernel.
	hb, _ := proto.Marshal(proto.HelloReq{Protocol: proto.ProtocolVersion})
	resp = rawCall(t, mux, proto.Request{Op: proto.OpHello, Body: hb})
	var h proto.Hello
	if resp.Err != nil || proto.Unmarshal(resp.Body, &h) != nil || h.Protocol != proto.ProtocolVersion || h.GuestOS != "linux" || !slices.Contains(h.Features, proto.OpExec) {
		t.Fatalf("hello: %+v %+v", resp, h)
	}
}

// TestReadFileInline: a batch's read_file carries up to maxInlineRead bytes
// and refuses more with EFBIG; a directory is EISDIR.
func TestReadFileInline(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, maxInlineRead+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := readFileInline(small); err != nil || string(r.Data) != "abc" || r.TooLarge {
		t.Errorf("small: %+v %v", r, err)
	}
	var pe *proto.Error
	if _, err := readFileInline(big); !errors.As(err, &pe) || pe.Name != "EFBIG" {
		t.Errorf("big: %v, want EFBIG", err)
	}
	if _, err := readFileInline(dir); err == nil {
		t.Errorf("directory: no error")
	}
}
