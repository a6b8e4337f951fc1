package initrd

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// testEntry is one record parsed back from a newc stream.
type testEntry struct {
	name                 string
	ino, mode, uid, gid  uint32
	nlink, mtime         uint32
	rdevMajor, rdevMinor uint32
	data                 []byte
}

// parseNewc parses one newc archive from b up to and including its trailer,
// checking the format's alignment rules, and returns the entries (trailer
// excluded) and the number of bytes consumed.
func parseNewc(t *testing.T, b []byte) ([]testEntry, int) {
	t.Helper()
	var out []testEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at unaligned offset %d", off)
		}
		if len(b)-off < headerLen {
			t.Fatalf("truncated header at %d", off)
		}
		h := b[off : off+headerLen]
		if string(h[:6]) != newcMagic {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		nameSize := int(f[11])
		nameStart := off + headerLen
		name := string(b[nameStart : nameStart+nameSize-1])
		if b[nameStart+nameSize-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := nameStart + nameSize
		for ; dataStart%4 != 0; dataStart++ {
			if b[dataStart] != 0 {
				t.Fatalf("non-zero name padding after %q", name)
			}
		}
		size := int(f[6])
		data := b[dataStart : dataStart+size]
		off = dataStart + size
		for ; off%4 != 0; off++ {
			if b[off] != 0 {
				t.Fatalf("non-zero data padding after %q", name)
			}
		}
		if f[12] != 0 || f[7] != 0 || f[8] != 0 {
			t.Fatalf("%q: check/devmajor/devminor not zero", name)
		}
		if name == trailerName {
			return out, off
		}
		out = append(out, testEntry{name: name, ino: f[0], mode: f[1], uid: f[2], gid: f[3],
			nlink: f[4], mtime: f[5], rdevMajor: f[9], rdevMinor: f[10], data: data})
	}
}

// unpackLikeKernel walks an initrd image the way the kernel's initramfs
// unpacker does: uncompressed archives at 4-byte aligned offsets, zero
// padding skipped, gzip members at any offset, each decompressed member
// itself holding archives. Later entries overwrite earlier ones.
func unpackLikeKernel(t *testing.T, img []byte) (map[string]testEntry, []string) {
	t.Helper()
	files := map[string]testEntry{}
	var order []string
	var walk func(b []byte, base int)
	walk = func(b []byte, base int) {
		off := 0
		for off < len(b) {
			switch {
			case b[off] == '0' && (base+off)%4 == 0:
				entries, n := parseNewc(t, b[off:])
				for _, e := range entries {
					files[e.name] = e
					order = append(order, e.name)
				}
				off += n
			case b[off] == 0:
				off++
			case bytes.HasPrefix(b[off:], []byte{0x1f, 0x8b}):
				r := bytes.NewReader(b[off:])
				zr, err := gzip.NewReader(r)
				if err != nil {
					t.Fatalf("gzip at %d: %v", off, err)
				}
				zr.Multistream(false)
				plain, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("gzip at %d: %v", off, err)
				}
				off = len(b) - r.Len()
				walk(plain, 0)
			default:
				t.Fatalf("invalid magic %#x at %d", b[off], off)
			}
		}
	}
	walk(img, 0)
	return files, order
}

func (e testEntry) String() string {
	return fmt.Sprintf("%s mode=%O nlink=%d", e.name, e.mode, e.nlink)
}
