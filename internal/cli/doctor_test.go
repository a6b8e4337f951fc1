package cli

import (
	"os"
	"strings"
	"testing"
)

func TestDoctorOnThisMachine(t *testing.T) {
	in := newInvocation(t, t.TempDir())
	in.vars["PATH"] = os.Getenv("PATH")
	code, out, errs := in.exec("doctor")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"ok    version: provium ", "ok    qemu: ", "      accel: ", "vhost-vsock: ", "ok    cache: ", "ok    scratch: ", "config: "} {
		if !strings.Contains(out, strings.TrimLeft(want, " ")) {
			t.Errorf("no %q line:\n%s", want, out)
		}
	}
	// No KVM here: the accel line says TCG and why.
	if _, err := os.Stat("/dev/kvm"); err != nil && !strings.Contains(out, "tcg, because KVM is unusable: /dev/kvm does not exist") {
		t.Errorf("accel line lacks the TCG reason:\n%s", out)
	}
}

func TestDoctorWithoutQEMUFails(t *testing.T) {
	in := newInvocation(t, t.TempDir())
	in.vars["PATH"] = t.TempDir()
	code, out, _ := in.exec("doctor")
	if code != ExitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	want := "FAIL  qemu: `qemu-system-x86_64` not found on PATH\n      fix: apt-get install qemu-system-x86\n"
	if !strings.Contains(out, want) {
		t.Fatalf("output lacks\n%s\ngot:\n%s", want, out)
	}
	// Every check still ran.
	if !strings.Contains(out, "scratch: ") || !strings.Contains(out, "config: ") {
		t.Fatalf("doctor stopped early:\n%s", out)
	}
}

func TestDoctorMissingProfileArtifact(t *testing.T) {
	dir := writeTree(t, map[string]string{"provium.toml": "[profiles.p]\nkernel = \"/nonexistent/vmlinux\"\ncmdline = \"x\"\n"})
	in := newInvocation(t, dir)
	in.vars["PATH"] = os.Getenv("PATH")
	code, out, _ := in.exec("doctor")
	if code != ExitFailed || !strings.Contains(out, "FAIL  profile p: kernel `/nonexistent/vmlinux`: no such file or directory\n      fix: ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
