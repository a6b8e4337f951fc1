package vmm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The guest counts forever; a restored guest must go on counting from where
// the snapshot caught it instead of booting afresh.
const tickScript = `/bin/busybox echo ` + marker + `
i=0
while true; do /bin/busybox echo "tick:$i"; i=$((i+1)); /bin/busybox sleep 0.1; done
`

var tickLine = regexp.MustCompile(`tick:(\d+)\r?\n`)

// waitTick returns the first complete tick number after off that satisfies ok.
func waitTick(t *testing.T, ctx context.Context, m *Machine, off int64, ok func(int) bool) (int, int64) {
	t.Helper()
	var partial []byte
	for {
		data, next, err := m.Console().ReadSince(ctx, off)
		if err != nil {
			t.Fatalf("waiting for a tick: %v\nconsole: %q", err, m.ConsoleTail(10))
		}
		off = next
		data = append(partial, data...)
		complete := data[:bytes.LastIndexByte(data, '\n')+1]
		partial = bytes.Clone(data[len(complete):])
		for _, mm := range tickLine.FindAllSubmatch(complete, -1) {
			if n, _ := strconv.Atoi(string(mm[1])); ok(n) {
				return n, off
			}
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	cfg := testConfig(t, tickScript)
	src, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	_, off := waitTick(t, ctx, src, 0, func(n int) bool { return n >= 5 })

	dir := filepath.Join(filepath.Dir(cfg.Scratch), "snap")
	t0 := time.Now()
	snap, err := src.Snapshot(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fast snapshot: %s", time.Since(t0))
	if snap.RAM == "" {
		t.Fatal("fast path expected: no RAM file")
	}
	logSizes(t, snap)
	// QEMU writes the log synchronously, so its last tick is at least the
	// last one printed before the snapshot stopped the guest.
	atSnap := lastTickInLog(t, src)
	// Live: the source goes on counting.
	if st, err := src.status(ctx); err != nil || st != "running" {
		t.Errorf("source after snapshot: %q %v", st, err)
	}
	waitTick(t, ctx, src, off, func(n int) bool { return n > atSnap })
	if err := src.Quit(ctx); err != nil {
		t.Fatal(err)
	}

	t1 := time.Now()
	restored, err := Restore(ctx, cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Quit(context.Background()) })
	if err := restored.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	first, roff := waitTick(t, ctx, restored, 0, func(int) bool { return true })
	t.Logf("restore to first tick: %s (tick %d; source was at %d after the snapshot)", time.Since(t1), first, atSnap)
	if first < 6 || first > atSnap+1 {
		t.Errorf("restored guest starts at tick %d, want the snapshot's count (6..%d)", first, atSnap+1)
	}
	if bytes.Contains(restored.ConsoleLog(), []byte(marker)) {
		t.Error("restored guest booted afresh (marker printed again)")
	}

	// A restored machine maps its RAM privately: its snapshot is the
	// portable kind, and restoring that works too.
	snap2, err := restored.Snapshot(ctx, filepath.Join(filepath.Dir(cfg.Scratch), "snap2"))
	if err != nil {
		t.Fatal(err)
	}
	if snap2.RAM != "" {
		t.Errorf("snapshot of a restored machine took the fast path: %+v", snap2)
	}
	last := lastTickInLog(t, restored)
	waitTick(t, ctx, restored, roff, func(int) bool { return true })
	restored.Quit(ctx)
	again, err := Restore(ctx, cfg, snap2)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Quit(context.Background())
	if err := again.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := waitTick(t, ctx, again, 0, func(int) bool { return true })
	if n < first || n > last+1 {
		t.Errorf("second restore starts at tick %d, want %d..%d", n, first, last+1)
	}
}

func lastTickInLog(t *testing.T, m *Machine) int {
	t.Helper()
	log, err := os.ReadFile(m.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	all := tickLine.FindAllSubmatch(log, -1)
	if len(all) == 0 {
		t.Fatalf("no tick in the log: %q", log)
	}
	n, _ := strconv.Atoi(string(all[len(all)-1][1]))
	return n
}

func logSizes(t *testing.T, snap SnapshotFiles) {
	for _, p := range []string{snap.State, snap.RAM} {
		if st, err := os.Stat(p); err == nil {
			t.Logf("%s: size %d, allocated %d", filepath.Base(p), st.Size(), st.Sys().(*syscall.Stat_t).Blocks*512)
		}
	}
}
