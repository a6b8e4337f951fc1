package guest

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
)

// pssKiB is a process's proportional set size (shared pages split among
// their users): the fair share of memory for N restores of one snapshot.
func pssKiB(t *testing.T, pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	t.Fatal("no Pss line")
	return 0
}

// TestSnapshotBenchmark measures B2 (restore to agent vs cold boot, snapshot
// time and size, 256 MiB and 1 GiB) and B9 (memory of 8 restores of one
// snapshot vs one booted VM). Set PROVIUM_BENCH_SNAPSHOT=1 to run it.
func TestSnapshotBenchmark(t *testing.T) {
	if os.Getenv("PROVIUM_BENCH_SNAPSHOT") == "" {
		t.Skip("set PROVIUM_BENCH_SNAPSHOT=1 to measure snapshots (B2, B9)")
	}
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	fb := b.ForFile("bench.test.lua")
	ctx := context.Background()
	for _, mem := range []uint64{256 << 20, 1 << 30} {
		spec := lab.BootSpec{Name: "bench", Path: "bench", Profile: "linux", Opts: lab.BootOpts{Memory: &mem}}
		t0 := time.Now()
		src, err := fb.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		cold := time.Since(t0)
		snap := filepath.Join(t.TempDir(), "bench.snap")
		t1 := time.Now()
		if err := src.(lab.Snapshotter).Snapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t1)
		pssBooted := pssKiB(t, src.(*Machine).VMM().PID())
		src.Stop(ctx)
		var st syscall.Stat_t
		if err := syscall.Stat(snap, &st); err != nil {
			t.Fatal(err)
		}
		var restores []time.Duration
		var clones []lab.Machine
		for range 8 {
			t2 := time.Now()
			m, err := fb.(lab.Restorer).Restore(ctx, spec, snap)
			if err != nil {
				t.Fatal(err)
			}
			restores = append(restores, time.Since(t2))
			clones = append(clones, m)
		}
		var pss int64
		for _, m := range clones {
			pss += pssKiB(t, m.(*Machine).VMM().PID())
		}
		for _, m := range clones {
			m.Stop(ctx)
		}
		best := restores[1]
		for _, d := range restores[1:] {
			best = min(best, d)
		}
		t.Logf("B2 %4d MiB: cold boot %s; snapshot %s, file %.1f MiB (allocated %.1f MiB); restore→agent first %s, later best %s (ratio %.3f)",
			mem>>20, cold.Round(time.Millisecond), took.Round(time.Millisecond), float64(st.Size)/(1<<20), float64(st.Blocks*512)/(1<<20),
			restores[0].Round(time.Millisecond), best.Round(time.Millisecond), best.Seconds()/cold.Seconds())
		t.Logf("B9 %4d MiB: PSS of one booted VM %d MiB; of 8 restores %d MiB (%.2f×)", mem>>20, pssBooted>>10, pss>>10, float64(pss)/float64(pssBooted))
	}
}
