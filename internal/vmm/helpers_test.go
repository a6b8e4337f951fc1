package vmm

import (
	"context"
	"github.com/provium/provium/internal/guesttest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// testKernelFile is a kernel for boot tests. None is committed: set
// PROVIUM_TEST_KERNEL, or have `provium image build` output in
// ~/.cache/provium/image, or unpack the Debian linux-image package under
// ~/.cache/provium/test-kernel (see the report in the commit message).
type testKernelFile struct {
	path string
	elf  bool // an ELF vmlinux (PVH boot) rather than a bzImage
}

func testKernel(t testing.TB) testKernelFile {
	t.Helper()
	home, _ := os.UserHomeDir()
	var candidates []string
	if p := os.Getenv("PROVIUM_TEST_KERNEL"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates,
		filepath.Join(home, ".cache/provium/image/vmlinux"),
		filepath.Join(home, ".cache/provium/test-kernel/vmlinux"))
	bz, _ := filepath.Glob(filepath.Join(home, ".cache/provium/test-kernel/x/boot/vmlinuz-*"))
	candidates = append(candidates, bz...)
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		b := make([]byte, 4)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		f.Read(b)
		f.Close()
		return testKernelFile{path: p, elf: string(b) == "\x7fELF"}
	}
	// None around: build the default image (Debian packages, cached).
	return testKernelFile{path: guesttest.Image(t).Vmlinux, elf: true}
}

// testInitrd builds a newc archive holding a static busybox and /init = script.
func testInitrd(t testing.TB, script string) string {
	t.Helper()
	busybox := "/bin/busybox"
	for _, tool := range []string{busybox, "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte("#!/bin/busybox sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.cpio")
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, b)
	}
	return out
}

// The tuned cmdline of 40 §4.
const testCmdline = "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests rodata=off 8250.nr_uarts=1 no_timer_check tsc=reliable reboot=t"

// bootTimeout bounds every boot; a TCG boot takes seconds, two cores are
// shared, so be generous — it is a hang guard, not a measurement.
const bootTimeout = 90 * time.Second

func testConfig(t testing.TB, script string) Config {
	t.Helper()
	k := testKernel(t)
	if _, err := exec.LookPath(DefaultQEMU); err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	// t.TempDir paths are long; sockets need short ones.
	scratch, err := os.MkdirTemp("", "pvt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scratch) })
	return Config{
		Name:    "t",
		Kernel:  k.path,
		Initrd:  testInitrd(t, script),
		Cmdline: testCmdline,
		Memory:  256 << 20,
		Scratch: filepath.Join(scratch, "m"),
	}
}

func startMachine(t *testing.T, cfg Config) (*Machine, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	start := time.Now()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Every path ends the machine.
	t.Cleanup(func() { m.Quit(context.Background()) })
	return m, start
}

func processGone(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return os.IsNotExist(err)
}

// waitGoroutines waits (bounded) for the goroutine count to fall back to
// at most n, and fails with a dump otherwise.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
