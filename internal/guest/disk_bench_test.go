package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/sparse"
	"github.com/provium/provium/internal/vmm"
)

// TestDiskBenchmark measures guest sequential I/O (dd of 64 MiB with
// O_DIRECT, 1 MiB blocks; writes end with an fsync) on a plain raw disk, a
// mediated disk (internal/nbd) and the same kind of image served by
// qemu-nbd, in one guest, rounds interleaved. Target: mediated ≥ 0.8 ×
// qemu-nbd. Set PROVIUM_BENCH_DISK=1 to run it (make bench does).
func TestDiskBenchmark(t *testing.T) {
	if os.Getenv("PROVIUM_BENCH_DISK") == "" {
		t.Skip("set PROVIUM_BENCH_DISK=1 to measure disk throughput")
	}
	qemuNBD, err := exec.LookPath("qemu-nbd")
	if err != nil {
		t.Skip("qemu-nbd not installed (qemu-utils)")
	}
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	ctx := context.Background()
	spec := lab.BootSpec{Name: "dbench", Path: "dbench", Profile: "linux", Opts: lab.BootOpts{Disks: []lab.DiskSpec{
		{ID: "plain", Source: lab.DiskScratch, Size: 128 << 20},
		{ID: "mediated", Source: lab.DiskScratch, Size: 128 << 20, Mediated: true},
	}}}
	lm, err := b.ForFile("bench.test.lua").Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	g := lm.(*Machine)
	defer g.Stop(ctx)

	// qemu-nbd serves a raw image of its own, like the mediated disk's, with
	// the same host caching as internal/nbd: the page cache, flushed to the
	// file (fdatasync) when the guest flushes.
	dir, err := os.MkdirTemp("/tmp", "pvnbd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img, sock := filepath.Join(dir, "img"), filepath.Join(dir, "s")
	if err := sparse.Create(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(qemuNBD, "-f", "raw", "--cache=writeback", "-k", sock, "-t", img)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := g.VMM().AttachDisk(ctx, vmm.Disk{ID: "qnbd", NBDSocket: sock, Serial: "qemu-nbd"}); err != nil {
		t.Fatal(err)
	}
	ag, err := g.Agent()
	if err != nil {
		t.Fatal(err)
	}
	sh := func(cmd string) string {
		r, err := ag.Exec(ctx, proto.ExecReq{Cmd: cmd, Shell: true, TimeoutMs: 600_000})
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("%s: %v %d %s", cmd, err, r.ExitCode, r.Stderr)
		}
		return strings.TrimSpace(string(r.Stdout))
	}
	dev := map[string]string{}
	for i := 0; i < 100 && len(dev) < 3; i++ {
		for _, name := range strings.Fields(sh("ls /sys/block")) {
			if s, err := ag.ReadFile(ctx, "/sys/block/"+name+"/serial"); err == nil {
				dev[string(s)] = "/dev/" + name
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	kinds := []string{"plain", "mediated", "qemu-nbd"}
	const rounds = 3
	const mib = 64
	best := map[string][2]float64{}
	timed := func(cmd string) float64 {
		t0 := time.Now()
		sh(cmd)
		return mib / time.Since(t0).Seconds()
	}
	for r := 0; r < rounds; r++ {
		for i := range kinds {
			k := kinds[(i+r)%len(kinds)] // rotate the order per round
			d := dev[k]
			if d == "" {
				t.Fatalf("no guest device for %s (have %v)", k, dev)
			}
			w := timed(fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d oflag=direct conv=fsync 2>/dev/null", d, mib))
			rd := timed(fmt.Sprintf("dd if=%s of=/dev/null bs=1M count=%d iflag=direct 2>/dev/null", d, mib))
			cur := best[k]
			best[k] = [2]float64{max(cur[0], w), max(cur[1], rd)}
		}
	}
	for _, k := range kinds {
		t.Logf("disk %-9s write %6.1f MiB/s  read %6.1f MiB/s (best of %d, dd 64 MiB O_DIRECT bs=1M)", k, best[k][0], best[k][1], rounds)
	}
	t.Logf("mediated ÷ qemu-nbd: write %.2f, read %.2f (target ≥ 0.8)",
		best["mediated"][0]/best["qemu-nbd"][0], best["mediated"][1]/best["qemu-nbd"][1])
}
