package nbd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// testClient is a minimal NBD client (fixed newstyle, NBD_OPT_GO or
// NBD_OPT_EXPORT_NAME, simple replies) used to drive the server in tests.
type testClient struct {
	c      net.Conn
	size   uint64
	flags  uint16
	cookie uint64
}

func dialBench(b *testing.B, path string) *testClient {
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	tc := &testClient{c: c}
	if err := tc.handshake(true); err != nil {
		b.Fatal(err)
	}
	return tc
}

func dialTest(t *testing.T, path string, useGo bool) *testClient {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := &testClient{c: c}
	if err := tc.handshake(useGo); err != nil {
		t.Fatal(err)
	}
	return tc
}

func (tc *testClient) handshake(useGo bool) error {
	var hello [18]byte
	if _, err := io.ReadFull(tc.c, hello[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(hello[0:]) != magicInit || binary.BigEndian.Uint64(hello[8:]) != magicOpt {
		return fmt.Errorf("bad greeting %x", hello)
	}
	if binary.BigEndian.Uint16(hello[16:])&flagFixedNewstyle == 0 {
		return fmt.Errorf("server is not fixed newstyle")
	}
	tc.c.Write(binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes))
	if !useGo {
		tc.sendOpt(optExportName, nil)
		var b [10]byte
		if _, err := io.ReadFull(tc.c, b[:]); err != nil {
			return err
		}
		tc.size, tc.flags = binary.BigEndian.Uint64(b[0:]), binary.BigEndian.Uint16(b[8:])
		return nil
	}
	data := binary.BigEndian.AppendUint32(nil, 0) // default export
	data = binary.BigEndian.AppendUint16(data, 0)
	tc.sendOpt(optGo, data)
	for {
		typ, payload, err := tc.readOptReply()
		if err != nil {
			return err
		}
		switch typ {
		case repAck:
			return nil
		case repInfo:
			if binary.BigEndian.Uint16(payload) == infoExport {
				tc.size, tc.flags = binary.BigEndian.Uint64(payload[2:]), binary.BigEndian.Uint16(payload[10:])
			}
		default:
			return fmt.Errorf("option reply %#x", typ)
		}
	}
}

func (tc *testClient) sendOpt(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	tc.c.Write(append(b, data...))
}

func (tc *testClient) readOptReply() (uint32, []byte, error) {
	var h [20]byte
	if _, err := io.ReadFull(tc.c, h[:]); err != nil {
		return 0, nil, err
	}
	if binary.BigEndian.Uint64(h[0:]) != magicOptReply {
		return 0, nil, fmt.Errorf("bad option reply magic")
	}
	p := make([]byte, binary.BigEndian.Uint32(h[16:]))
	_, err := io.ReadFull(tc.c, p)
	return binary.BigEndian.Uint32(h[12:]), p, err
}

// do sends one request and returns the reply's error value and, for a
// successful read, the data.
func (tc *testClient) do(typ, flags uint16, off uint64, length uint32, payload []byte) (uint32, []byte, error) {
	tc.cookie++
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, tc.cookie)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	if _, err := tc.c.Write(append(b, payload...)); err != nil {
		return 0, nil, err
	}
	var r [16]byte
	if _, err := io.ReadFull(tc.c, r[:]); err != nil {
		return 0, nil, err
	}
	if binary.BigEndian.Uint32(r[0:]) != magicReply || binary.BigEndian.Uint64(r[8:]) != tc.cookie {
		return 0, nil, fmt.Errorf("bad reply %x", r)
	}
	errno := binary.BigEndian.Uint32(r[4:])
	if typ != cmdRead || errno != 0 {
		return errno, nil, nil
	}
	data := make([]byte, length)
	_, err := io.ReadFull(tc.c, data)
	return 0, data, err
}

func (tc *testClient) read(t *testing.T, off uint64, n uint32) ([]byte, uint32) {
	t.Helper()
	errno, data, err := tc.do(cmdRead, 0, off, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return data, errno
}

func (tc *testClient) write(t *testing.T, off uint64, data []byte, flags uint16) uint32 {
	t.Helper()
	errno, _, err := tc.do(cmdWrite, flags, off, uint32(len(data)), data)
	if err != nil {
		t.Fatal(err)
	}
	return errno
}

func (tc *testClient) flush(t *testing.T) uint32 {
	t.Helper()
	errno, _, err := tc.do(cmdFlush, 0, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return errno
}

// newTestExport serves a fresh image of size bytes on a unix socket.
func newTestExport(t *testing.T, size int64, opts Options) (*Export, string, string) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0x11}, int(size)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Path = img
	if opts.SpillDir == "" {
		opts.SpillDir = dir
	}
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	if err := e.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, img, sock
}
