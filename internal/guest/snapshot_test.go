package guest

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
)

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func readGuest(t *testing.T, ctx context.Context, m lab.Machine, path string) string {
	t.Helper()
	a, err := m.(*Machine).Agent()
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.ReadFile(ctx, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func writeGuest(t *testing.T, ctx context.Context, m lab.Machine, path, data string) {
	t.Helper()
	a, err := m.(*Machine).Agent()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFile(ctx, path, []byte(data)); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// One boot, one snapshot, three restores: the source keeps running after the
// snapshot, each restore sees the snapshot's content, writes in one restore
// are invisible to the others, and the snapshot file never changes.
func TestSnapshotAndIndependentRestores(t *testing.T) {
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	fb := b.ForFile("snap.test.lua")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := lab.BootSpec{Name: "s", Path: "s", Profile: "linux"}
	src, err := fb.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Stop(context.Background())
	writeGuest(t, ctx, src, "/tmp/state", "original")

	snap := filepath.Join(t.TempDir(), "s.snap")
	t0 := time.Now()
	if err := src.(lab.Snapshotter).Snapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot took %s", time.Since(t0))
	man, err := snapfile.Verify(snap)
	if err != nil {
		t.Fatal(err)
	}
	if man.Profile != "linux" || !man.HasRAM || man.MemoryBytes != DefaultMemory {
		t.Errorf("manifest = %+v", man)
	}
	sum := fileSum(t, snap)

	// The source keeps running and its agent answers again.
	writeGuest(t, ctx, src, "/tmp/state", "changed")
	if got := readGuest(t, ctx, src, "/tmp/state"); got != "changed" {
		t.Fatalf("source after snapshot: %q", got)
	}
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	restorer := fb.(lab.Restorer)
	var clones []lab.Machine
	for i := range 3 {
		t1 := time.Now()
		m, err := restorer.Restore(ctx, lab.BootSpec{Name: "s", Path: "s", Profile: "linux"}, snap)
		if err != nil {
			t.Fatalf("restore %d: %v", i, err)
		}
		t.Logf("restore %d to agent: %s", i, time.Since(t1))
		defer m.Stop(context.Background())
		clones = append(clones, m)
	}
	for i, m := range clones {
		if got := readGuest(t, ctx, m, "/tmp/state"); got != "original" {
			t.Errorf("clone %d: /tmp/state = %q, want the snapshot's content", i, got)
		}
	}
	writeGuest(t, ctx, clones[0], "/tmp/state", "clone0")
	for i, m := range clones[1:] {
		if got := readGuest(t, ctx, m, "/tmp/state"); got != "original" {
			t.Errorf("clone %d sees clone 0's write: %q", i+1, got)
		}
	}
	// The wall clock was re-synced to the host's.
	a, _ := clones[2].(*Machine).Agent()
	res, err := a.Exec(ctx, proto.ExecReq{Cmd: "date +%s", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := strings.TrimSpace(string(res.Stdout)); d == "" {
		t.Errorf("date printed nothing")
	}
	if fileSum(t, snap) != sum {
		t.Error("the snapshot file changed while restoring it")
	}

	// A snapshot of a restored machine (portable path) restores too.
	snap2 := filepath.Join(t.TempDir(), "s2.snap")
	if err := clones[0].(lab.Snapshotter).Snapshot(ctx, snap2); err != nil {
		t.Fatal(err)
	}
	m, err := restorer.Restore(ctx, lab.BootSpec{Name: "s", Path: "s", Profile: "linux"}, snap2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	if got := readGuest(t, ctx, m, "/tmp/state"); got != "clone0" {
		t.Errorf("restore of the clone's snapshot: %q", got)
	}
}

func TestRestoreProfileMismatch(t *testing.T) {
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	snap := filepath.Join(t.TempDir(), "x.snap")
	state := filepath.Join(t.TempDir(), "state")
	os.WriteFile(state, []byte("x"), 0o644)
	if err := snapfile.Create(snap, false, snapfile.Manifest{Profile: "other"}, snapfile.Member{Name: snapfile.MemberState, Path: state}); err != nil {
		t.Fatal(err)
	}
	_, err := b.ForFile("f").(lab.Restorer).Restore(context.Background(), lab.BootSpec{Name: "v", Path: "v", Profile: "linux"}, snap)
	want := "vm:restore: snapshot was taken from profile `other`, vm `v` uses profile `linux`"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
