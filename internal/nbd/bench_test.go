package nbd

import (
	"os"
	"path/filepath"
	"testing"
)

// benchClient serves a 64 MiB image and returns a connected client.
func benchClient(b *testing.B) *testClient {
	dir := b.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		b.Fatal(err)
	}
	e, err := Open(Options{Path: img, SpillDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	sock := filepath.Join(dir, "s")
	if err := e.Listen(sock); err != nil {
		b.Fatal(err)
	}
	return dialBench(b, sock)
}

// BenchmarkSequentialWriteFlush: 64 MiB in 1 MiB writes, then a flush,
// through the socket, as the guest's dd does (bytes/s is the server's
// throughput without QEMU).
func BenchmarkSequentialWriteFlush(b *testing.B) {
	c := benchClient(b)
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
	c := benchClient(b)
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
