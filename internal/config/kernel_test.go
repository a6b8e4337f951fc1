package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveKernel(t *testing.T) {
	p := &Profile{Name: "p", Kernel: "/explicit"}
	if k, err := p.ResolveKernel(); err != nil || k != "/explicit" {
		t.Errorf("explicit kernel = %q, %v", k, err)
	}

	root := t.TempDir()
	p = &Profile{Name: "p", Root: root}
	if _, err := p.ResolveKernel(); err == nil || err.Error() != "profile `p`: root `"+root+
		"` holds no kernel (looked for boot/vmlinuz* and usr/lib/modules/*/vmlinuz*); set `kernel`" {
		t.Errorf("no kernel err = %v", err)
	}

	mod := filepath.Join(root, "usr/lib/modules/6.1.0/vmlinuz")
	writeFile(t, mod, "k")
	if k, err := p.ResolveKernel(); err != nil || k != mod {
		t.Errorf("modules kernel = %q, %v", k, err)
	}

	// /boot wins over usr/lib/modules; a symlink to the same file is one kernel.
	boot := filepath.Join(root, "boot/vmlinuz-6.1.0")
	writeFile(t, boot, "k")
	if err := os.Symlink("vmlinuz-6.1.0", filepath.Join(root, "boot/vmlinuz")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "boot/vmlinuz.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if k, err := p.ResolveKernel(); err != nil || k != filepath.Join(root, "boot/vmlinuz") {
		t.Errorf("boot kernel = %q, %v", k, err)
	}

	other := filepath.Join(root, "boot/vmlinuz-6.2.0")
	writeFile(t, other, "k2")
	_, err := p.ResolveKernel()
	want := "profile `p`: root `" + root + "` holds several kernels (" + filepath.Join(root, "boot/vmlinuz") +
		", " + other + "); set `kernel` to choose one"
	if err == nil || err.Error() != want {
		t.Errorf("several err =\n%v\nwant\n%s", err, want)
	}
}
