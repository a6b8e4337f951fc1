package nbd

// Fuzz targets for everything the server parses from a client. CI runs the
// seed corpus (plain `go test`); a longer run, documented in README.md:
//
//	go test -run '^$' -fuzz FuzzHandshake -fuzztime 2m ./internal/nbd/
//	go test -run '^$' -fuzz FuzzRequests -fuzztime 2m ./internal/nbd/

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func fuzzExport(f *testing.F) *Export {
	dir := f.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, make([]byte, 64<<10), 0o600); err != nil {
		f.Fatal(err)
	}
	e, err := Open(Options{Name: "d", Path: img, SpillDir: dir, MemLimit: 16 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	return e
}

func optBytes(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func goOption(name string) []byte {
	d := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = binary.BigEndian.AppendUint16(d, 1)
	d = binary.BigEndian.AppendUint16(d, infoBlockSize)
	return optBytes(optGo, d)
}

func reqBytes(typ, flags uint16, off uint64, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, payload...)
}

// serveBytes runs one connection whose client sends exactly in.
func serveBytes(e *Export, in []byte) error {
	return e.serve(bufio.NewReader(bytes.NewReader(in)), bufio.NewWriter(io.Discard))
}

func FuzzHandshake(f *testing.F) {
	e := fuzzExport(f)
	flags := binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)
	f.Add(append(append([]byte{}, flags...), goOption("")...))
	f.Add(append(append([]byte{}, flags...), goOption("d")...))
	f.Add(append(append([]byte{}, flags...), optBytes(optExportName, []byte("d"))...))
	f.Add(append(append([]byte{}, flags...), append(optBytes(optList, nil), optBytes(optAbort, nil)...)...))
	f.Add(append(append([]byte{}, flags...), append(optBytes(optStructuredReply, nil), optBytes(optInfo, []byte{0, 0, 0, 9, 'x'})...)...))
	f.Add([]byte{0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = serveBytes(e, in) // must neither panic nor hang
	})
}

func FuzzRequests(f *testing.F) {
	e := fuzzExport(f)
	hs := append(binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes), goOption("")...)
	f.Add(reqBytes(cmdRead, 0, 0, 512, nil))
	f.Add(reqBytes(cmdWrite, 0, 512, 4, []byte("abcd")))
	f.Add(append(reqBytes(cmdWrite, cmdFlagFUA, 100, 3, []byte("xyz")), reqBytes(cmdFlush, 0, 0, 0, nil)...))
	f.Add(reqBytes(cmdTrim, 0, 0, 4096, nil))
	f.Add(reqBytes(cmdRead, 0, 1<<62, 1<<31, nil))
	f.Add(reqBytes(cmdDisc, 0, 0, 0, nil))
	f.Fuzz(func(t *testing.T, reqs []byte) {
		_ = serveBytes(e, append(append([]byte{}, hs...), reqs...))
		e.PowerCut() // keep the overlay small across inputs
	})
}

func TestParseRequestRejectsBadMagic(t *testing.T) {
	b := reqBytes(cmdRead, 0, 0, 1, nil)
	b[0] ^= 0xff
	if _, err := parseRequest(b); err == nil {
		t.Fatal("bad magic accepted")
	}
	if _, err := parseRequest(b[:10]); err == nil {
		t.Fatal("short header accepted")
	}
	r, err := parseRequest(reqBytes(cmdWrite, cmdFlagFUA, 4096, 512, nil))
	if err != nil || r.typ != cmdWrite || r.flags != cmdFlagFUA || r.offset != 4096 || r.length != 512 || r.cookie != 7 {
		t.Fatalf("parsed %+v, %v", r, err)
	}
}
