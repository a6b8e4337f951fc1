package sparse

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyKeepsDataAndSize(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 8 << 20
	if err := Create(src, size); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(src, os.O_WRONLY, 0)
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("middle"), 3<<20)
	f.WriteAt([]byte("tail"), size-4)
	f.Close()
	dst := filepath.Join(dir, "dst")
	if err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if len(b) != size || !bytes.Equal(a, b) {
		t.Fatalf("copy differs: %d bytes vs %d", len(b), len(a))
	}
	// The source stays untouched by writes to the copy (a reflink is
	// copy-on-write, a plain copy is separate).
	g, _ := os.OpenFile(dst, os.O_WRONLY, 0)
	g.WriteAt([]byte("XXXX"), 0)
	g.Close()
	a2, _ := os.ReadFile(src)
	if string(a2[:4]) != "head" {
		t.Fatalf("source changed: %q", a2[:4])
	}
}

func TestCreateIsBlankAndRefusesExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d")
	if err := Create(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if len(b) != 1<<20 || !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Fatal("scratch image is not 1 MiB of zeros")
	}
	if err := Create(p, 1<<20); err == nil {
		t.Fatal("Create overwrote an existing file")
	}
}
