package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/provium/provium/internal/fixture"
)

// TestEnsureFixtureWaitsForAPeer: `provium fixture build` finding the
// fixture's build lock held says whom it waits for, then reports the
// entry the peer installed as already built (no build, no guest).
func TestEnsureFixtureWaitsForAPeer(t *testing.T) {
	root, cache := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "fx.fixture.lua"), []byte(`return provium:snapshot()`), 0o644); err != nil {
		t.Fatal(err)
	}
	notices := make(chan string, 1)
	fx := &Fixtures{
		Cache: fixture.New(cache),
		Keyer: fixture.NewKeyer(fixture.KeyerConfig{Roots: []string{root}, Protocol: 1}),
		Warn:  func(line string) { notices <- line },
	}
	key, err := fx.Keyer.Key("fx")
	if err != nil {
		t.Fatal(err)
	}
	peer := fixture.New(cache) // another process's view
	held, err := peer.AcquireKey(context.Background(), key, fixture.LockInfo{File: "tests/a.test.lua"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Stamp(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		kind  fixture.Kind
		path  string
		built bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		kind, path, built, err := EnsureFixture(context.Background(), &Options{Fixtures: fx}, "fx", false)
		done <- result{kind, path, built, err}
	}()
	if got, want := <-notices, fmt.Sprintf(msgWaitingForBuild, "fx", "tests/a.test.lua"); got != want {
		t.Errorf("notice %q, want %q", got, want)
	}
	entry := peer.EntryPath(fixture.KindLab, key)
	if err := os.MkdirAll(entry, 0o755); err != nil {
		t.Fatal(err)
	}
	held.Release()
	if r := <-done; r.err != nil || r.kind != fixture.KindLab || r.path != entry || r.built {
		t.Fatalf("got %+v", r)
	}
}
