package nbd

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSequentialWriteFlush: 64 MiB in 1 MiB writes, then a flush,
// through the socket, as the guest's dd does (bytes/s is the server's
// throughput without QEMU).
func BenchmarkSequentialWriteFlush(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	os.Truncate(img, 64<<20)
	e, err := Open(Options{Path: img, SpillDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	sock := filepath.Join(dir, "s")
	if err := e.Listen(sock); err != nil {
		b.Fatal(err)
	}
	c := dialBench(b, sock)
	buf := make([]byte, 1<<20)
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for range b.N {
		for off := uint64(0); off < 64<<20; off += 1 << 20 {
			if errno, _, err := c.do(cmdWrite, 0, off, 1<<20, buf); err != nil || errno != 0 {
				b.Fatal(err, errno)
			}
		}
		if errno, _, err := c.do(cmdFlush, 0, 0, 0, nil); err != nil || errno != 0 {
			b.Fatal(err, errno)
		}
	}
}

// BenchmarkSequentialRead: 64 MiB in 1 MiB reads.
func BenchmarkSequentialRead(b *testing.B) {
	dir := b.TempDir()
	img := filepath.Join(dir, "img")
	os.WriteFile(img, make([]byte, 64<<20), 0o600)
	e, err := Open(Options{Path: img, SpillDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	sock := filepath.Join(dir, "s")
	if err := e.Listen(sock); err != nil {
		b.Fatal(err)
	}
	c := dialBench(b, sock)
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for range b.N {
		for off := uint64(0); off < 64<<20; off += 1 << 20 {
			if errno, _, err := c.do(cmdRead, 0, off, 1<<20, nil); err != nil || errno != 0 {
				b.Fatal(err, errno)
			}
		}
	}
}
