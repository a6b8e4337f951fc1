package initrd

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestCacheHitMissByContent(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(profile, []byte("PROFILE-INITRD"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewCache(filepath.Join(dir, "cache"))

	p1, hit, err := c.Base(profile, []byte("OVERLAY1"))
	if err != nil || hit {
		t.Fatalf("first Base: hit=%v err=%v", hit, err)
	}
	got, err := os.ReadFile(p1)
	if err != nil || string(got) != "PROFILE-INITRDOVERLAY1" {
		t.Fatalf("base content %q, %v", got, err)
	}

	p2, hit, err := c.Base(profile, []byte("OVERLAY1"))
	if err != nil || !hit || p2 != p1 {
		t.Fatalf("second Base: path=%s hit=%v err=%v, want hit on %s", p2, hit, err, p1)
	}

	// Same path, new content: a miss with a different entry.
	if err := os.WriteFile(profile, []byte("PROFILE-INITRD-v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	p3, hit, err := c.Base(profile, []byte("OVERLAY1"))
	if err != nil || hit || p3 == p1 {
		t.Fatalf("changed profile: path=%s hit=%v err=%v", p3, hit, err)
	}
	p4, hit, err := c.Base(profile, []byte("OVERLAY2"))
	if err != nil || hit || p4 == p3 {
		t.Fatalf("changed overlay: path=%s hit=%v err=%v", p4, hit, err)
	}

	// A different path with identical content reuses the entry.
	copyPath := filepath.Join(dir, "copy.img")
	if err := os.WriteFile(copyPath, []byte("PROFILE-INITRD-v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	p5, hit, err := c.Base(copyPath, []byte("OVERLAY2"))
	if err != nil || !hit || p5 != p4 {
		t.Fatalf("copied profile: path=%s hit=%v err=%v, want hit on %s", p5, hit, err, p4)
	}

	leftovers, _ := filepath.Glob(filepath.Join(c.Dir(), ".base-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestCacheNoProfileInitrd(t *testing.T) {
	c := NewCache(t.TempDir())
	p, _, err := c.Base("", []byte("ONLY-OVERLAY"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "ONLY-OVERLAY" {
		t.Fatalf("base = %q", got)
	}
}

func TestCacheMissingProfile(t *testing.T) {
	c := NewCache(t.TempDir())
	if _, _, err := c.Base("/nonexistent/initrd", []byte("x")); err == nil {
		t.Fatal("Base accepted a missing profile initrd")
	}
}

func TestMerge(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(profile, []byte("P"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewCache(filepath.Join(dir, "cache"))
	out := filepath.Join(dir, "boot.img")

	p, err := c.Merge(profile, []byte("O"), nil, out)
	if err != nil {
		t.Fatal(err)
	}
	if p == out {
		t.Fatal("Merge without files wrote a per-boot copy")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("out exists without files: %v", err)
	}

	p, err = c.Merge(profile, []byte("O"), []byte("F"), out)
	if err != nil || p != out {
		t.Fatalf("Merge = %s, %v", p, err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, []byte("POF")) {
		t.Fatalf("merged = %q", got)
	}
}

func TestCacheConcurrentBase(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(profile, bytes.Repeat([]byte("P"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewCache(filepath.Join(dir, "cache"))
	const n = 4
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], _, errs[i] = c.Base(profile, []byte("OVERLAY"))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("Base %d: %s, %v (first: %s)", i, paths[i], errs[i], paths[0])
		}
	}
	got, err := os.ReadFile(paths[0])
	if err != nil || len(got) != 1<<20+len("OVERLAY") || !bytes.HasSuffix(got, []byte("OVERLAY")) {
		t.Fatalf("base is %d bytes, %v", len(got), err)
	}
	entries, _ := os.ReadDir(c.Dir())
	if len(entries) != 1 {
		t.Fatalf("cache holds %d files, want 1", len(entries))
	}
}

func TestCachePrune(t *testing.T) {
	dir := t.TempDir()
	c := NewCache(filepath.Join(dir, "cache"))
	if n, err := c.Prune(time.Hour); err != nil || n != 0 {
		t.Fatalf("Prune of a missing dir = %d, %v", n, err)
	}
	oldPath, _, err := c.Base("", []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	newPath, _, err := c.Base("", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(c.Dir(), "not-ours")
	if err := os.WriteFile(stranger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// What a writer that crashed mid-write leaves (renameio's temp name).
	crashed := filepath.Join(c.Dir(), "."+filepath.Base(oldPath)+"12345")
	if err := os.WriteFile(crashed, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{oldPath, newPath, stranger, crashed} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	// A hit refreshes the entry, so only the unused one is pruned.
	if _, hit, err := c.Base("", []byte("new")); err != nil || !hit {
		t.Fatalf("hit = %v, %v", hit, err)
	}
	n, err := c.Prune(24 * time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2 (the unused entry and the crashed writer's temp file)", n, err)
	}
	for _, p := range []string{oldPath, crashed} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived: %v", p, err)
		}
	}
	for _, p := range []string{newPath, stranger} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}
