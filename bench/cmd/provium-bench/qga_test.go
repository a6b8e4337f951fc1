package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd4a5e1000)
	libudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f7fd2545000)
	libglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f7fd23f9000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f7fd212f000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f7fd2680000)
`
	got, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/x86_64-linux-gnu/libudev.so.1",
		"/lib/x86_64-linux-gnu/libglib-2.0.so.0",
		"/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseLdd = %q, want %q", got, want)
	}
	_, err = parseLdd("\tlibnuma.so.1 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n")
	if err == nil || !strings.Contains(err.Error(), "libnuma.so.1") {
		t.Errorf("missing library: err = %v", err)
	}
	if got, err := parseLdd("\tstatically linked\n"); err != nil || len(got) != 0 {
		t.Errorf("static: %q, %v", got, err)
	}
}

func TestQGARequest(t *testing.T) {
	b, err := qgaRequest("guest-ping", nil)
	if err != nil || string(b) != `{"execute":"guest-ping"}`+"\n" {
		t.Errorf("no arguments: %q, %v", b, err)
	}
	b, err = qgaRequest("guest-exec-status", map[string]int{"pid": 7})
	if err != nil || string(b) != `{"execute":"guest-exec-status","arguments":{"pid":7}}`+"\n" {
		t.Errorf("arguments: %q, %v", b, err)
	}
}

func TestDecodeQGAResponse(t *testing.T) {
	var h int64
	if err := decodeQGAResponse([]byte(`{"return": 1000}`+"\n"), &h); err != nil || h != 1000 {
		t.Errorf("return: %d, %v", h, err)
	}
	if err := decodeQGAResponse([]byte(`{"return": {}}`), nil); err != nil {
		t.Errorf("empty return: %v", err)
	}
	err := decodeQGAResponse([]byte(`{"error": {"class": "GenericError", "desc": "no such file"}}`), &h)
	var qe *qgaError
	if !errors.As(err, &qe) || qe.Desc != "no such file" || err.Error() != "GenericError: no such file" {
		t.Errorf("error: %v", err)
	}
	if err := decodeQGAResponse([]byte(`{}`), nil); err == nil {
		t.Error("a response with neither return nor error was accepted")
	}
	if err := decodeQGAResponse([]byte(`{"return": 1`), nil); err == nil {
		t.Error("truncated JSON was accepted")
	}
}

func TestReadSyncReply(t *testing.T) {
	// Noise before the delimiter, a stale answer to an earlier attempt,
	// then ours.
	in := "garbage{\"return\": {}}\n\xff{\"return\": 5}\n\xff{\"return\": 42}\n"
	if err := readSyncReply(bufio.NewReader(strings.NewReader(in)), 42); err != nil {
		t.Errorf("sync: %v", err)
	}
	if err := readSyncReply(bufio.NewReader(strings.NewReader("\xff{\"return\": 5}\n")), 42); err == nil {
		t.Error("sync succeeded without our id")
	}
}

// fakeQGA answers the commands the benchmark sends, over one connection.
func fakeQGA(t *testing.T, conn net.Conn, files map[string][]byte, exitedAfter int) {
	t.Helper()
	defer conn.Close()
	r := bufio.NewReader(conn)
	dec := json.NewDecoder(r)
	polls := 0
	handles := map[int64]string{}
	next := int64(1000)
	for {
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := dec.Decode(&req); err != nil {
			return
		}
		var args map[string]any
		json.Unmarshal(req.Arguments, &args)
		var ret any = map[string]any{}
		switch req.Execute {
		case "guest-exec":
			polls = 0
			ret = map[string]any{"pid": 77}
		case "guest-exec-status":
			polls++
			if polls < exitedAfter {
				ret = map[string]any{"exited": false}
			} else {
				ret = map[string]any{"exited": true, "exitcode": 0}
			}
		case "guest-file-open":
			next++
			handles[next] = args["path"].(string)
			if args["mode"] == "w" {
				files[args["path"].(string)] = nil
			}
			ret = next
		case "guest-file-read":
			b := files[handles[int64(args["handle"].(float64))]]
			ret = map[string]any{"count": len(b), "buf-b64": base64.StdEncoding.EncodeToString(b), "eof": true}
		case "guest-file-write":
			b, _ := base64.StdEncoding.DecodeString(args["buf-b64"].(string))
			p := handles[int64(args["handle"].(float64))]
			files[p] = append(files[p], b...)
			ret = map[string]any{"count": len(b), "eof": false}
		case "guest-file-close", "guest-ping":
		default:
			fmt.Fprintf(conn, `{"error": {"class": "CommandNotFound", "desc": "%s"}}`+"\n", req.Execute)
			continue
		}
		b, _ := json.Marshal(map[string]any{"return": ret})
		conn.Write(append(b, '\n'))
	}
}

func TestQGAClientOps(t *testing.T) {
	host, guest := net.Pipe()
	files := map[string][]byte{"/tmp/r": bytes.Repeat([]byte("x"), 4096)}
	done := make(chan struct{})
	go func() { defer close(done); fakeQGA(t, guest, files, 3) }()
	c := &qgaClient{conn: host, r: bufio.NewReader(host)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := c.call(ctx, "guest-ping", nil, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if polls, err := c.exec(ctx, "/bin/true"); err != nil || polls != 3 {
		t.Errorf("exec: %d polls, %v", polls, err)
	}
	if b, err := c.readFile(ctx, "/tmp/r"); err != nil || !bytes.Equal(b, files["/tmp/r"]) {
		t.Errorf("read: %d bytes, %v", len(b), err)
	}
	page := bytes.Repeat([]byte("provium!"), 512)
	if err := c.writeFile(ctx, "/tmp/w", page); err != nil || !bytes.Equal(files["/tmp/w"], page) {
		t.Errorf("write: %v", err)
	}
	err := c.call(ctx, "guest-nope", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("unknown command: %v", err)
	}
	c.close()
	<-done
}
