package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/initrd"
)

// sharedDir is where the real-package tests keep the downloaded .debs
// between runs, so CI downloads them once. Images are always built fresh:
// a cached image would test the code that built it, not the current one.
func sharedDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a real image from Debian packages")
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := os.Getenv("PROVIUM_TEST_IMAGE_DIR")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(base, "provium", "test-image")
	}
	return dir
}

// sharedDebs returns a directory with the kernel and busybox .debs,
// downloading them once.
func sharedDebs(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "debs")
	if _, err := findDebs(dir); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	var progress bytes.Buffer
	if err := Download(ctx, dir, &progress); err != nil {
		t.Fatalf("Download: %v\n%s", err, progress.String())
	}
	return dir
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestRealImage builds the image twice from the same Debian .debs, checks
// the outputs are byte-identical, inspects the initrd and boots it.
func TestRealImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	debs := sharedDebs(t, ctx)

	var results [2]*Result
	for i := range results {
		res, err := Build(ctx, Options{Out: t.TempDir(), FromDebs: debs})
		if err != nil {
			t.Fatalf("Build %d: %v", i, err)
		}
		if res.Reused {
			t.Fatalf("Build %d reused an image in a fresh dir", i)
		}
		results[i] = res
	}
	a, b := results[0], results[1]

	t.Run("reproducible", func(t *testing.T) {
		for _, pair := range [][2]string{{a.Initrd, b.Initrd}, {a.Vmlinux, b.Vmlinux}, {a.BzImage, b.BzImage}} {
			if fileSum(t, pair[0]) != fileSum(t, pair[1]) {
				t.Errorf("%s and %s differ", pair[0], pair[1])
			}
		}
	})
	t.Run("outputs", func(t *testing.T) {
		if !strings.HasPrefix(a.KernelRelease, "6.") || !strings.HasSuffix(a.KernelRelease, "-amd64") {
			t.Errorf("kernel release %q", a.KernelRelease)
		}
		profile, err := os.ReadFile(a.ProfileFile)
		if err != nil || string(profile) != a.Profile || !strings.Contains(a.Profile, fmt.Sprintf("kernel = %q", a.Vmlinux)) {
			t.Errorf("profile.toml = %q (%v), Profile = %q", profile, err, a.Profile)
		}
		vmlinux, err := os.ReadFile(a.Vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPVH(vmlinux); err != nil {
			t.Fatal(err)
		}
		again, err := Build(ctx, Options{Out: a.Dir, FromDebs: filepath.Join(a.Dir, "no-debs-here")})
		if err != nil || !again.Reused || again.KernelRelease != a.KernelRelease {
			t.Errorf("second Build in %s: %+v, %v; want reuse", a.Dir, again, err)
		}
	})
	t.Run("initrd", func(t *testing.T) { checkImageInitrd(t, a) })
	t.Run("boot", func(t *testing.T) { bootMarker(t, ctx, a) })
	t.Run("boot-merged", func(t *testing.T) { bootMerged(t, ctx, a) })
}

// checkImageInitrd lists the image initrd with the system cpio and checks
// its shape: busybox and applet links, no /init, the module subset with a
// modules.dep whose every path is in the archive.
func checkImageInitrd(t *testing.T, res *Result) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "gzip -dc \"$1\" | cpio -i --quiet --make-directories --no-absolute-filenames --nonmatching 'dev/*'", "sh", res.Initrd)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack initrd: %v: %s", err, out)
	}
	if _, err := os.Lstat(filepath.Join(dir, "init")); err == nil {
		t.Error("image initrd has an /init; the agent must run standalone")
	}
	for _, link := range []string{"bin/sh", "sbin/modprobe", "bin/mount", "sbin/poweroff"} {
		target, err := os.Readlink(filepath.Join(dir, link))
		if err != nil || target != busyboxPath {
			t.Errorf("%s -> %q, %v", link, target, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "bin/busybox"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v, %v", fi, err)
	}
	modDir := filepath.Join(dir, "lib/modules", res.KernelRelease)
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(dep)), "\n") {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("bad modules.dep line %q", line)
		}
		seen[modName(mod)] = deps
		for _, p := range append(strings.Fields(deps), mod) {
			if _, err := os.Stat(filepath.Join(modDir, p)); err != nil {
				t.Errorf("modules.dep names %s, not in the initrd: %v", p, err)
			}
		}
	}
	for _, want := range []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "vmw_vsock_virtio_transport"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("module %s missing from modules.dep", want)
		}
	}
	if !strings.Contains(seen["virtio_blk"], "virtio_ring.ko") {
		t.Errorf("virtio_blk deps %q lack virtio_ring", seen["virtio_blk"])
	}
	alias, err := os.ReadFile(filepath.Join(modDir, "modules.alias"))
	if err != nil || !strings.Contains(string(alias), " virtio_blk\n") {
		t.Errorf("modules.alias lacks virtio_blk (%v)", err)
	}
}

// bootMarker boots the image's vmlinux through PVH under TCG with a tiny
// extra initrd segment whose /init prints a marker, loads modules with
// busybox modprobe and powers off: it proves the ELF kernel boots, the
// appended gzip segment is found, busybox works and modules.dep is usable.
// Time to the marker is the baseline of 50-performance.md B1.
func bootMarker(t *testing.T, ctx context.Context, res *Result) {
	const marker = "PROVIUM-BOOT-MARKER"
	script := "#!/bin/sh\n" +
		"echo " + marker + " $(uname -r)\n" +
		"mount -t proc proc /proc\n" +
		"mount -t sysfs sysfs /sys\n" +
		"modprobe -a virtio_pci virtio_blk virtio_net virtio_console virtio_rng vmw_vsock_virtio_transport 9p" +
		" && echo MODULES-OK $(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' ')\n" +
		"poweroff -f\n"
	extra := initrd.NewArchive()
	if err := extra.AddFile("/init", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	seg, err := extra.Segment()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(res.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(t.TempDir(), "merged.img")
	if err := os.WriteFile(merged, append(base, seg...), 0o644); err != nil {
		t.Fatal(err)
	}

	console, markerAt := bootConsole(t, ctx, res.Vmlinux, merged, "rdinit=/init", marker)
	t.Logf("boot to marker: %v", markerAt)
	if !strings.Contains(console, marker+" "+res.KernelRelease) {
		t.Errorf("marker line lacks the kernel release %s:\n%s", res.KernelRelease, console)
	}
	var modulesOK string
	if i := strings.Index(console, "MODULES-OK"); i >= 0 {
		modulesOK, _, _ = strings.Cut(console[i:], "\n")
	}
	for _, mod := range []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio_rng", "vmw_vsock_virtio_transport", "9p"} {
		if !strings.Contains(modulesOK, " "+mod+" ") {
			t.Errorf("module %s not loaded; got %q\nconsole:\n%s", mod, modulesOK, console)
		}
	}
}

// bootMerged boots the image the way Provium does: the image initrd, then
// an agent overlay (here a shell script standing in for the agent, run as
// rdinit=/sbin/provium-agent with no /init, i.e. standalone) and a per-boot
// files archive, merged through initrd.Cache. The script reports what the
// kernel unpacked from the three segments.
func bootMerged(t *testing.T, ctx context.Context, res *Result) {
	const marker = "PROVIUM-AGENT-STANDIN"
	agent := "#!/bin/sh\n" +
		"echo " + marker + "\n" +
		"echo BOOTJSON $(cat " + initrd.BootJSONPath + ")\n" +
		"echo FILE $(stat -c '%a %s' /data/deep/secret) $(stat -c %a /data/deep) $(cat /data/deep/secret)\n" +
		"echo INIT $(ls /init 2>&1 >/dev/null | wc -l)\n" +
		"poweroff -f\n"
	overlay, err := initrd.Overlay([]byte(agent), nil)
	if err != nil {
		t.Fatal(err)
	}
	overlaySeg, err := overlay.Segment()
	if err != nil {
		t.Fatal(err)
	}
	files, err := initrd.FilesArchive([]initrd.File{
		{Path: initrd.BootJSONPath, Content: []byte(`{"name":"vm1"}`)},
		{Path: "/data/deep/secret", Content: []byte("s3cret"), Mode: 0o600, HasMode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	filesSeg, err := files.Segment()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cache := initrd.NewCache(filepath.Join(dir, "cache"))
	merged, err := cache.Merge(res.Initrd, overlaySeg, filesSeg, filepath.Join(dir, "boot.img"))
	if err != nil {
		t.Fatal(err)
	}

	console, markerAt := bootConsole(t, ctx, res.Vmlinux, merged, "rdinit="+initrd.AgentPath, marker)
	t.Logf("boot to agent stand-in: %v", markerAt)
	for _, want := range []string{
		`BOOTJSON {"name":"vm1"}`,
		"FILE 600 6 755 s3cret",
		"INIT 1", // ls printed one error line: the image has no /init
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}
}

// bootConsole runs QEMU (TCG, PVH kernel) until the guest powers off, and
// returns the serial console and the time the marker line appeared. QEMU
// is killed on every path: timeout, test failure, test process death.
func bootConsole(t *testing.T, ctx context.Context, kernel, initrdPath, appendArgs, marker string) (string, time.Duration) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	bootCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(bootCtx, qemu,
		"-M", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "stdio",
		"-device", "virtio-rng-pci",
		"-kernel", kernel, "-initrd", initrdPath,
		"-append", Cmdline+" "+appendArgs)
	// Own process group and SIGKILL when the test process dies, so QEMU
	// never outlives the test; CommandContext kills it on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	var markerAt time.Duration
	sc := bufio.NewScanner(stdout)
	// The pipe closes when QEMU exits (guest power-off) or is killed.
	for sc.Scan() {
		line := sc.Text()
		console.WriteString(line + "\n")
		if markerAt == 0 && strings.Contains(line, marker) {
			markerAt = time.Since(start)
		}
	}
	waitErr := cmd.Wait()
	if markerAt == 0 {
		t.Fatalf("no %s on the console (qemu: %v)\nconsole:\n%s\nstderr:\n%s", marker, waitErr, console.String(), stderr.String())
	}
	if waitErr != nil {
		t.Errorf("qemu did not power off cleanly: %v\n%s", waitErr, stderr.String())
	}
	return console.String(), markerAt
}
