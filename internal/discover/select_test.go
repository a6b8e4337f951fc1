package discover

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sampleFiles() []File {
	return []File{
		{Display: "tests/net/dns.test.lua", RootRel: "net/dns.test.lua"},
		{Display: "/abs/elsewhere/disk.test.lua", RootRel: "disk.test.lua"},
		{Display: "tests/boot.test.lua", RootRel: "boot.test.lua"},
	}
}

func TestFilter(t *testing.T) {
	files := sampleFiles()
	equalStrings(t, "none", displays(Filter(files, nil)), displays(files))
	equalStrings(t, "root-relative", displays(Filter(files, []string{"net/"})),
		[]string{"tests/net/dns.test.lua"})
	// "tests/" appears only in display paths.
	equalStrings(t, "display", displays(Filter(files, []string{"tests/"})),
		[]string{"tests/net/dns.test.lua", "tests/boot.test.lua"})
	// Repeated flags OR together; order stays discovery order.
	equalStrings(t, "or", displays(Filter(files, []string{"boot", "elsewhere"})),
		[]string{"/abs/elsewhere/disk.test.lua", "tests/boot.test.lua"})
	if got := Filter(files, []string{"zzz"}); len(got) != 0 {
		t.Errorf("no match kept %v", displays(got))
	}
}

func TestParseShard(t *testing.T) {
	for _, v := range []string{"1/1", "2/3", "3/3", "01/02"} {
		if _, err := ParseShard(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	s, _ := ParseShard("2/5")
	if s != (ShardSpec{Index: 2, Count: 5}) {
		t.Errorf("2/5 → %+v", s)
	}
	for _, v := range []string{"", "1", "0/3", "4/3", "1/0", "a/b", "-1/3", "+1/3", " 1/3", "1/3/4", "1.5/3", "99999999999999999999/1"} {
		_, err := ParseShard(v)
		want := "--shard: expected I/N with 1 ≤ I ≤ N, got `" + v + "`"
		if err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %q", v, err, want)
		}
	}
}

func TestShard(t *testing.T) {
	// Discovery order differs from display order on purpose.
	files := []File{
		{Display: "d.test.lua"}, {Display: "b.test.lua"}, {Display: "e.test.lua"},
		{Display: "a.test.lua"}, {Display: "c.test.lua"},
	}
	// Sorted: a b c d e → shard 1 gets k=0,2,4 = a c e; shard 2 gets b d.
	// Results keep discovery order.
	equalStrings(t, "1/2", displays(Shard(files, 1, 2)), []string{"e.test.lua", "a.test.lua", "c.test.lua"})
	equalStrings(t, "2/2", displays(Shard(files, 2, 2)), []string{"d.test.lua", "b.test.lua"})
	equalStrings(t, "1/1", displays(Shard(files, 1, 1)), displays(files))

	// Every file lands in exactly one shard, for several N.
	for n := 1; n <= 7; n++ {
		count := map[string]int{}
		for i := 1; i <= n; i++ {
			for _, f := range Shard(files, i, n) {
				count[f.Display]++
			}
		}
		for _, f := range files {
			if count[f.Display] != 1 {
				t.Errorf("n=%d: %s in %d shards", n, f.Display, count[f.Display])
			}
		}
	}
}

func TestSince(t *testing.T) {
	tmp := tempDir(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, mtime time.Time) File {
		p := filepath.Join(tmp, name)
		writeFile(t, p, "")
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return File{Display: name, Abs: p}
	}
	ref := mk("ref", base)
	files := []File{
		mk("old.test.lua", base.Add(-time.Second)),
		mk("same.test.lua", base),
		mk("new.test.lua", base.Add(time.Nanosecond)),
	}
	got, err := Since(files, ref.Abs)
	if err != nil {
		t.Fatal(err)
	}
	// Strictly newer only: equal mtime is not a change.
	equalStrings(t, "since", displays(got), []string{"new.test.lua"})

	missing := filepath.Join(tmp, "no-such-ref")
	_, err = Since(files, missing)
	want := fmt.Sprintf("--since: cannot stat `%s`: no such file or directory", missing)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestFingerprint(t *testing.T) {
	tmp := tempDir(t)
	writeFile(t, filepath.Join(tmp, "t", "a.test.lua"), "a")
	writeFile(t, filepath.Join(tmp, "t", "helpers", "h.lua"), "h")
	config := filepath.Join(tmp, "provium.toml")
	discoverNow := func() *Set {
		set, err := Discover(Options{Paths: []string{"t"}, Cwd: tmp})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	before := TakeFingerprint(discoverNow(), config)
	if !before.Equal(TakeFingerprint(discoverNow(), config)) {
		t.Fatal("unchanged tree gives a different fingerprint")
	}

	steps := []struct {
		name   string
		change func()
	}{
		{"helper mtime", func() {
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(tmp, "t", "helpers", "h.lua"), future, future); err != nil {
				t.Fatal(err)
			}
		}},
		{"test size", func() { writeFile(t, filepath.Join(tmp, "t", "a.test.lua"), "longer") }},
		{"new test file", func() { writeFile(t, filepath.Join(tmp, "t", "b.test.lua"), "") }},
		{"config appears", func() { writeFile(t, config, "") }},
		{"new helper", func() { writeFile(t, filepath.Join(tmp, "t", "helpers", "g.lua"), "") }},
	}
	prev := before
	for _, s := range steps {
		s.change()
		next := TakeFingerprint(discoverNow(), config)
		if prev.Equal(next) {
			t.Errorf("%s: change not detected", s.name)
		}
		prev = next
	}
}
