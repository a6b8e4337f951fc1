package discover

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiscoverDirectoryRules(t *testing.T) {
	tmp, proj := projectTree(t)
	set, err := Discover(Options{Paths: []string{"tests"}, Cwd: proj})
	if err != nil {
		t.Fatal(err)
	}
	// Sorted bytewise; helpers, fixtures, non-Lua files, the dot-dir, the
	// symlinked directory and the dangling link are all left out; the
	// symlinked file is followed.
	equalStrings(t, "root-relative", rootRels(set.Files),
		[]string{"a.test.lua", "b.test.lua", "link.test.lua", "sub/c.test.lua"})
	equalStrings(t, "display", displays(set.Files),
		[]string{"tests/a.test.lua", "tests/b.test.lua", "tests/link.test.lua", "tests/sub/c.test.lua"})

	link := set.Files[2]
	if want := filepath.Join(proj, "tests", "link.test.lua"); link.Abs != want {
		t.Errorf("Abs = %q, want %q", link.Abs, want)
	}
	if want := filepath.Join(tmp, "other", "o.test.lua"); link.Canonical != want {
		t.Errorf("Canonical = %q, want %q", link.Canonical, want)
	}
	for _, f := range set.Files {
		if f.Entry != "tests" {
			t.Errorf("%s: Entry = %q, want %q", f.Display, f.Entry, "tests")
		}
	}
	equalStrings(t, "roots", set.Roots, []string{filepath.Join(proj, "tests")})
	if len(set.Fixtures) != 1 || set.Fixtures[0].Name != "fixtures/base" {
		t.Fatalf("fixtures = %+v, want one named fixtures/base", set.Fixtures)
	}
	if got := set.Fixtures[0].Display; got != "tests/fixtures/base.fixture.lua" {
		t.Errorf("fixture display = %q", got)
	}
	if len(set.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", set.Warnings)
	}
}

func TestDiscoverExplicitDotDir(t *testing.T) {
	_, proj := projectTree(t)
	writeFile(t, filepath.Join(proj, "tests", ".hidden", ".deeper", "d.test.lua"), "")
	set, err := Discover(Options{Paths: []string{"tests/.hidden"}, Cwd: proj})
	if err != nil {
		t.Fatal(err)
	}
	// The named dot-dir is scanned; dot-dirs below it are still skipped.
	equalStrings(t, "display", displays(set.Files), []string{"tests/.hidden/h.test.lua"})
}

func TestDiscoverBytewiseOrder(t *testing.T) {
	tmp := tempDir(t)
	for _, p := range []string{"a/b.test.lua", "a.test.lua", "B.test.lua", "a-b.test.lua"} {
		writeFile(t, filepath.Join(tmp, p), "")
	}
	set, err := Discover(Options{Cwd: tmp})
	if err != nil {
		t.Fatal(err)
	}
	// '-' (0x2d) < '.' (0x2e) < '/' (0x2f); upper case before lower case.
	equalStrings(t, "order", rootRels(set.Files),
		[]string{"B.test.lua", "a-b.test.lua", "a.test.lua", "a/b.test.lua"})
}

func TestDiscoverEntryOrderAndDuplicates(t *testing.T) {
	tmp, proj := projectTree(t)
	other := filepath.Join(tmp, "other", "o.test.lua")
	set, err := Discover(Options{
		Paths: []string{"tests/sub", "tests", "tests/sub/c.test.lua", other},
		Cwd:   proj,
	})
	if err != nil {
		t.Fatal(err)
	}
	// tests/sub first (its own root-relative path), then tests without the
	// file already listed; the direct file and the link target are
	// duplicates by canonical path.
	equalStrings(t, "display", displays(set.Files),
		[]string{"tests/sub/c.test.lua", "tests/a.test.lua", "tests/b.test.lua", "tests/link.test.lua"})
	equalStrings(t, "root-relative", rootRels(set.Files),
		[]string{"c.test.lua", "a.test.lua", "b.test.lua", "link.test.lua"})
	equalStrings(t, "entries", fieldOf(set.Files, func(f File) string { return f.Entry }),
		[]string{"tests/sub", "tests", "tests", "tests"})
	// Effective roots: every scanned dir, plus the direct file's directory,
	// deduplicated, in order.
	equalStrings(t, "roots", set.Roots, []string{
		filepath.Join(proj, "tests", "sub"),
		filepath.Join(proj, "tests"),
		filepath.Join(tmp, "other"),
	})
}

func TestDiscoverFileArgument(t *testing.T) {
	tmp, proj := projectTree(t)
	other := filepath.Join(tmp, "other", "o.test.lua")
	set, err := Discover(Options{Paths: []string{"./tests/a.test.lua", other}, Cwd: proj})
	if err != nil {
		t.Fatal(err)
	}
	// Under cwd → cwd-relative; outside → absolute. Named directly, the
	// root-relative path is the display path.
	equalStrings(t, "display", displays(set.Files), []string{"tests/a.test.lua", other})
	equalStrings(t, "root-relative", rootRels(set.Files), []string{"tests/a.test.lua", other})
	equalStrings(t, "roots", set.Roots, []string{filepath.Join(proj, "tests"), filepath.Join(tmp, "other")})
}

func TestDiscoverSymlinkedDirArgumentIsFollowed(t *testing.T) {
	tmp, proj := projectTree(t)
	set, err := Discover(Options{Paths: []string{"tests/linkdir"}, Cwd: proj})
	if err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "display", displays(set.Files), []string{"tests/linkdir/o.test.lua"})
	if want := filepath.Join(tmp, "other", "o.test.lua"); set.Files[0].Canonical != want {
		t.Errorf("Canonical = %q, want %q", set.Files[0].Canonical, want)
	}
}

func TestDiscoverBadPaths(t *testing.T) {
	_, proj := projectTree(t)
	cases := []struct {
		path    string
		problem PathProblem
		text    string
	}{
		{"nope", PathMissing, "`nope`: no such file or directory"},
		{"tests/a.test.lua/x", PathMissing, "`tests/a.test.lua/x`: no such file or directory"},
		{"tests/helpers/x.lua", PathNotTestFile, "`tests/helpers/x.lua` is not a *.test.lua file"},
		{"tests/fixtures/base.fixture.lua", PathNotTestFile, "`tests/fixtures/base.fixture.lua` is not a *.test.lua file"},
		{"tests/notes.txt", PathNotTestFile, "`tests/notes.txt` is not a *.test.lua file"},
		{"tests/dangling.test.lua", PathMissing, "`tests/dangling.test.lua`: no such file or directory"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			// A good path first: a later bad one still fails the whole scan.
			_, err := Discover(Options{Paths: []string{"tests", c.path}, Cwd: proj})
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *PathError", err)
			}
			if pe.Problem != c.problem || pe.Path != c.path {
				t.Errorf("got %+v", pe)
			}
			if err.Error() != c.text {
				t.Errorf("text = %q, want %q", err.Error(), c.text)
			}
		})
	}
}

func TestPathErrorUnreadableText(t *testing.T) {
	err := &PathError{Path: "p", Problem: PathUnreadable, Err: errors.New("permission denied")}
	if got, want := err.Error(), "`p`: permission denied"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDiscoverConfigRoots(t *testing.T) {
	tmp := tempDir(t)
	writeFile(t, filepath.Join(tmp, "r1", "one.test.lua"), "")
	writeFile(t, filepath.Join(tmp, "r1", "fx", "base.fixture.lua"), "")
	writeFile(t, filepath.Join(tmp, "r2", "two.test.lua"), "")
	writeFile(t, filepath.Join(tmp, "r2", "fx", "base.fixture.lua"), "")
	writeFile(t, filepath.Join(tmp, "r2", "fx", "extra.fixture.lua"), "")
	writeFile(t, filepath.Join(tmp, "afile"), "")
	roots := []string{filepath.Join(tmp, "r2"), "gone", filepath.Join(tmp, "r1"), "afile"}

	set, err := Discover(Options{Roots: roots, Cwd: tmp})
	if err != nil {
		t.Fatalf("missing root must only warn: %v", err)
	}
	equalStrings(t, "display", displays(set.Files), []string{"r2/two.test.lua", "r1/one.test.lua"})
	equalStrings(t, "warnings", set.Warnings, []string{
		fmt.Sprintf(msgRootMissing, "gone"),
		fmt.Sprintf(msgRootNotDir, "afile"),
	})
	if set.Warnings[0] != "root `gone` does not exist; skipping it" {
		t.Errorf("warning text %q", set.Warnings[0])
	}
	equalStrings(t, "roots", set.Roots, []string{
		filepath.Join(tmp, "r2"), filepath.Join(tmp, "gone"), filepath.Join(tmp, "r1"), filepath.Join(tmp, "afile"),
	})
	// Same name in two roots: the first root wins, as lookup does.
	if len(set.Fixtures) != 2 {
		t.Fatalf("fixtures = %+v", set.Fixtures)
	}
	if f := set.Fixtures[0]; f.Name != "fx/base" || f.Root != filepath.Join(tmp, "r2") {
		t.Errorf("first fixture = %+v", f)
	}
	if f := set.Fixtures[1]; f.Name != "fx/extra" {
		t.Errorf("second fixture = %+v", f)
	}
}

func TestDiscoverPathsBeatRootsButRootsStayEffective(t *testing.T) {
	tmp := tempDir(t)
	writeFile(t, filepath.Join(tmp, "r1", "one.test.lua"), "")
	writeFile(t, filepath.Join(tmp, "r1", "base.fixture.lua"), "")
	writeFile(t, filepath.Join(tmp, "p", "p.test.lua"), "")
	set, err := Discover(Options{Paths: []string{"p"}, Roots: []string{"r1"}, Cwd: tmp})
	if err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "display", displays(set.Files), []string{"p/p.test.lua"})
	equalStrings(t, "roots", set.Roots, []string{filepath.Join(tmp, "r1")})
	if len(set.Fixtures) != 1 || set.Fixtures[0].Name != "base" {
		t.Errorf("fixtures = %+v", set.Fixtures)
	}
}

func TestDiscoverImplicitCwd(t *testing.T) {
	tmp := tempDir(t)
	writeFile(t, filepath.Join(tmp, "x", "y.test.lua"), "")
	set, err := Discover(Options{Cwd: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Files) != 1 {
		t.Fatalf("files = %+v", set.Files)
	}
	f := set.Files[0]
	if f.Display != "x/y.test.lua" || f.RootRel != "x/y.test.lua" || f.Entry != "." {
		t.Errorf("file = %+v", f)
	}
	equalStrings(t, "roots", set.Roots, []string{tmp})
}

func TestDiscoverNothingFound(t *testing.T) {
	tmp := tempDir(t)
	writeFile(t, filepath.Join(tmp, "helper.lua"), "")
	set, err := Discover(Options{Cwd: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Files) != 0 {
		t.Errorf("files = %+v, want none", set.Files)
	}
}

func TestDiscoverUnreadablePathAndRoot(t *testing.T) {
	tmp := tempDir(t)
	// A component longer than NAME_MAX makes stat fail with ENAMETOOLONG,
	// an error that is neither "missing" nor "not a test file".
	long := strings.Repeat("x", 300)
	_, err := Discover(Options{Paths: []string{long}, Cwd: tmp})
	var pe *PathError
	if !errors.As(err, &pe) || pe.Problem != PathUnreadable {
		t.Fatalf("err = %v, want unreadable *PathError", err)
	}
	if want := "`" + long + "`: file name too long"; err.Error() != want {
		t.Errorf("text = %q, want %q", err.Error(), want)
	}

	set, err := Discover(Options{Roots: []string{long}, Cwd: tmp})
	if err != nil {
		t.Fatalf("root stat failure must only warn: %v", err)
	}
	equalStrings(t, "warnings", set.Warnings, []string{"root `" + long + "`: file name too long; skipping it"})
}
