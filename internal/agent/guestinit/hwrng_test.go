package guestinit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestQuietHWRNG(t *testing.T) {
	sys := t.TempDir()
	// No hwrng: nothing to do.
	if err := QuietHWRNG(sys); err != nil {
		t.Fatalf("without an hwrng: %v", err)
	}
	p := filepath.Join(sys, hwrngQuality)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("1000\n"), 0o644)
	if err := QuietHWRNG(sys); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "0\n" {
		t.Fatalf("rng_quality = %q", b)
	}
	os.Chmod(p, 0o444)
	os.Chmod(filepath.Dir(p), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Dir(p), 0o755) })
	if os.Getuid() != 0 {
		if err := QuietHWRNG(sys); err == nil {
			t.Fatal("an unwritable rng_quality was not reported")
		}
	}
}
