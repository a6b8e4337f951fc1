package discover

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFile creates path (and its parents) with content.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// tempDir is t.TempDir with symlinks resolved, so canonical paths can be
// compared with paths built from it.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fieldOf projects a list of files onto one of their fields.
func fieldOf(files []File, get func(File) string) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, get(f))
	}
	return out
}

func displays(files []File) []string { return fieldOf(files, func(f File) string { return f.Display }) }
func rootRels(files []File) []string { return fieldOf(files, func(f File) string { return f.RootRel }) }

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	}
}

// projectTree builds:
//
//	<tmp>/other/o.test.lua
//	<tmp>/proj/tests/{a,b}.test.lua, sub/c.test.lua
//	<tmp>/proj/tests/helpers/x.lua, fixtures/base.fixture.lua, notes.txt
//	<tmp>/proj/tests/.hidden/h.test.lua
//	<tmp>/proj/tests/link.test.lua -> <tmp>/other/o.test.lua
//	<tmp>/proj/tests/linkdir -> <tmp>/other
//	<tmp>/proj/tests/dangling.test.lua -> missing
//
// and returns (tmp, proj).
func projectTree(t *testing.T) (string, string) {
	t.Helper()
	tmp := tempDir(t)
	proj := filepath.Join(tmp, "proj")
	tests := filepath.Join(proj, "tests")
	writeFile(t, filepath.Join(tmp, "other", "o.test.lua"), "-- o")
	writeFile(t, filepath.Join(tests, "b.test.lua"), "-- b")
	writeFile(t, filepath.Join(tests, "a.test.lua"), "-- a")
	writeFile(t, filepath.Join(tests, "sub", "c.test.lua"), "-- c")
	writeFile(t, filepath.Join(tests, "helpers", "x.lua"), "return {}")
	writeFile(t, filepath.Join(tests, "fixtures", "base.fixture.lua"), "-- fixture")
	writeFile(t, filepath.Join(tests, "notes.txt"), "not lua")
	writeFile(t, filepath.Join(tests, ".hidden", "h.test.lua"), "-- hidden")
	symlink(t, filepath.Join(tmp, "other", "o.test.lua"), filepath.Join(tests, "link.test.lua"))
	symlink(t, filepath.Join(tmp, "other"), filepath.Join(tests, "linkdir"))
	symlink(t, filepath.Join(tmp, "missing.test.lua"), filepath.Join(tests, "dangling.test.lua"))
	return tmp, proj
}
