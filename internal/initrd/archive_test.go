package initrd

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func sampleArchive(t *testing.T) *Archive {
	t.Helper()
	a := NewArchive()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.AddFile("/usr/bin/tool", []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(a.AddFile("/etc/a-b", []byte("x"), 0o600))
	must(a.AddFile("/etc/empty", nil, 0o644))
	must(a.AddDir("/tmp", 0o1777))
	must(a.AddSymlink("/bin/sh", "busybox"))
	must(a.AddCharDev("/dev/console", 0o600, 5, 1))
	must(a.AddFile("/etc/odd", []byte("12345"), 0o4755))
	return a
}

func TestWriteToFormat(t *testing.T) {
	a := sampleArchive(t)
	b := a.Bytes()
	if len(b)%4 != 0 {
		t.Fatalf("archive length %d not a multiple of 4", len(b))
	}
	entries, n := parseNewc(t, b)
	if n != len(b) {
		t.Fatalf("trailer at %d, archive is %d bytes", n, len(b))
	}
	var names []string
	got := map[string]testEntry{}
	for _, e := range entries {
		names = append(names, e.name)
		got[e.name] = e
		if e.uid != 0 || e.gid != 0 || e.mtime != 0 {
			t.Errorf("%s: uid/gid/mtime = %d/%d/%d, want 0", e.name, e.uid, e.gid, e.mtime)
		}
	}
	want := []string{"bin", "bin/sh", "dev", "dev/console", "etc", "etc/a-b", "etc/empty",
		"etc/odd", "tmp", "usr", "usr/bin", "usr/bin/tool"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("entries = %v, want %v", names, want)
	}
	if !sort.StringsAreSorted(names) {
		t.Fatalf("entries not sorted: %v", names)
	}
	checks := map[string]uint32{
		"bin":          0o040755,
		"bin/sh":       0o120777,
		"dev/console":  0o020600,
		"etc/a-b":      0o100600,
		"etc/odd":      0o104755,
		"tmp":          0o041777,
		"usr/bin":      0o040755,
		"usr/bin/tool": 0o100755,
	}
	for name, mode := range checks {
		if got[name].mode != mode {
			t.Errorf("%s: mode %O, want %O", name, got[name].mode, mode)
		}
	}
	if string(got["bin/sh"].data) != "busybox" {
		t.Errorf("symlink target %q", got["bin/sh"].data)
	}
	if c := got["dev/console"]; c.rdevMajor != 5 || c.rdevMinor != 1 {
		t.Errorf("console rdev %d:%d", c.rdevMajor, c.rdevMinor)
	}
	if string(got["etc/odd"].data) != "12345" {
		t.Errorf("etc/odd content %q", got["etc/odd"].data)
	}
	if !bytes.Equal(b, sampleArchive(t).Bytes()) {
		t.Fatal("same entries gave different bytes")
	}
}

func TestAddErrors(t *testing.T) {
	cases := []struct {
		name string
		do   func(a *Archive) error
		want string
	}{
		{"relative", func(a *Archive) error { return a.AddFile("etc/x", nil, 0o644) }, `"etc/x": path must be absolute`},
		{"root", func(a *Archive) error { return a.AddFile("/", nil, 0o644) }, `root directory`},
		{"unclean", func(a *Archive) error { return a.AddFile("/a/../b", nil, 0o644) }, `"/a/../b": path is not clean`},
		{"trailing slash", func(a *Archive) error { return a.AddFile("/a/", nil, 0o644) }, `not clean`},
		{"perm", func(a *Archive) error { return a.AddFile("/a", nil, 0o10000) }, `"/a": mode 0o10000 out of range`},
		{"file under file", func(a *Archive) error {
			if err := a.AddFile("/a", nil, 0o644); err != nil {
				return err
			}
			return a.AddFile("/a/b", nil, 0o644)
		}, `"/a/b": parent "/a" is not a directory`},
		{"file over parent", func(a *Archive) error {
			if err := a.AddFile("/a/b", nil, 0o644); err != nil {
				return err
			}
			return a.AddFile("/a", nil, 0o644)
		}, `"/a": is a parent directory`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(NewArchive())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want containing %q", err, c.want)
			}
		})
	}
}

func TestLaterEntryWins(t *testing.T) {
	a := NewArchive()
	if err := a.AddFile("/x", []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.AddFile("/x", []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	entries, _ := parseNewc(t, a.Bytes())
	if len(entries) != 1 || string(entries[0].data) != "new" || entries[0].mode != 0o100640 {
		t.Fatalf("entries = %v", entries)
	}
}

// TestSystemCpio checks our output against GNU cpio: the listing and an
// extraction with modes and contents.
func TestSystemCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio(1) not installed")
	}
	a := sampleArchive(t)
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(a.Bytes())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	listed := strings.Fields(string(out))
	if len(listed) != 12 || listed[0] != "bin" || listed[11] != "usr/bin/tool" {
		t.Fatalf("cpio -t listed %v", listed)
	}

	dir := t.TempDir()
	a2 := NewArchive() // no device node: extracting one needs privileges not every CI has
	for _, add := range []func() error{
		func() error { return a2.AddFile("/usr/bin/tool", []byte("tool"), 0o751) },
		func() error { return a2.AddSymlink("/bin/sh", "busybox") },
		func() error { return a2.AddDir("/tmp", 0o1777) },
	} {
		if err := add(); err != nil {
			t.Fatal(err)
		}
	}
	cmd = exec.Command("cpio", "-i", "--quiet", "--make-directories", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(a2.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	content, err := os.ReadFile(filepath.Join(dir, "usr/bin/tool"))
	if err != nil || string(content) != "tool" {
		t.Fatalf("extracted tool = %q, %v", content, err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "usr/bin/tool"))
	if err != nil || fi.Mode().Perm() != 0o751 {
		t.Fatalf("tool mode = %v, %v", fi.Mode(), err)
	}
	target, err := os.Readlink(filepath.Join(dir, "bin/sh"))
	if err != nil || target != "busybox" {
		t.Fatalf("bin/sh -> %q, %v", target, err)
	}
	fi, err = os.Lstat(filepath.Join(dir, "tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("tmp mode = %v, %v", fi.Mode(), err)
	}
}

// TestSegmentsConcatenate appends gzip segments to an uncompressed archive
// of odd length (as an arbitrary profile initrd may be) and checks that the
// kernel's unpacking rules find every archive and that later archives win.
func TestSegmentsConcatenate(t *testing.T) {
	base := NewArchive()
	if err := base.AddFile("/init", []byte("profile init"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := base.AddFile("/etc/shared", []byte("from profile"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := append(base.Bytes(), 0, 0, 0) // odd trailing padding, 4-misaligned end

	overlay, err := Overlay([]byte("AGENT"), []byte(`{"name":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	seg1, err := overlay.Segment()
	if err != nil {
		t.Fatal(err)
	}
	files, err := FilesArchive([]File{{Path: "/etc/shared", Content: []byte("from files"), Mode: 0o600, HasMode: true}})
	if err != nil {
		t.Fatal(err)
	}
	var seg2 bytes.Buffer
	if err := files.WriteSegment(&seg2, gzip.BestCompression); err != nil {
		t.Fatal(err)
	}
	img = append(img, seg1...)
	img = append(img, seg2.Bytes()...)

	got, _ := unpackLikeKernel(t, img)
	if e := got["init"]; string(e.data) != "profile init" {
		t.Errorf("init = %q", e.data)
	}
	if e := got["sbin/provium-agent"]; string(e.data) != "AGENT" || e.mode != 0o100755 {
		t.Errorf("agent = %v %q", e, e.data)
	}
	if e := got["etc/provium/boot.json"]; string(e.data) != `{"name":"a"}` || e.mode != 0o100644 {
		t.Errorf("boot.json = %v %q", e, e.data)
	}
	if e := got["etc/shared"]; string(e.data) != "from files" || e.mode != 0o100600 {
		t.Errorf("etc/shared = %v %q", e, e.data)
	}
	if e := got["etc/provium"]; e.mode != 0o040755 {
		t.Errorf("etc/provium = %v", e)
	}

	// The system's gzip agrees that the segments are valid concatenated members.
	if _, err := exec.LookPath("gzip"); err == nil {
		cmd := exec.Command("gzip", "-dc")
		cmd.Stdin = bytes.NewReader(append(append([]byte{}, seg1...), seg2.Bytes()...))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gzip -dc: %v", err)
		}
		want := append(overlay.Bytes(), files.Bytes()...)
		if !bytes.Equal(out, want) {
			t.Fatal("gzip -dc of the concatenated segments differs from the archives")
		}
	}
}
