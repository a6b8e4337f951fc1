package guestinit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnableSysrqWritesTheFullMask(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, sysrqPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("438\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := EnableSysrq(root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "1\n" {
		t.Fatalf("sysrq mask = %q, want \"1\\n\"", b)
	}
	if err := EnableSysrq(filepath.Join(root, "missing")); err == nil {
		t.Fatal("EnableSysrq on a missing procfs: no error")
	}
}
