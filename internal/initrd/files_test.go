package initrd

import (
	"strings"
	"testing"
)

func TestFilesArchiveModes(t *testing.T) {
	a, err := FilesArchive([]File{
		{Path: "/etc/app/conf", Content: []byte("k=v")},
		{Path: "/usr/local/bin/run", Content: []byte("#!/bin/sh"), Mode: 0o755, HasMode: true},
		{Path: "/secret", Content: []byte("s"), Mode: 0, HasMode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := parseNewc(t, a.Bytes())
	got := map[string]uint32{}
	for _, e := range entries {
		got[e.name] = e.mode
	}
	want := map[string]uint32{
		"etc":               0o040755,
		"etc/app":           0o040755,
		"etc/app/conf":      0o100644,
		"secret":            0o100000,
		"usr":               0o040755,
		"usr/local":         0o040755,
		"usr/local/bin":     0o040755,
		"usr/local/bin/run": 0o100755,
	}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for name, mode := range want {
		if got[name] != mode {
			t.Errorf("%s: mode %O, want %O", name, got[name], mode)
		}
	}
}

func TestFilesArchiveErrorsNamePath(t *testing.T) {
	cases := []struct {
		f    File
		want string
	}{
		{File{Path: "relative/x"}, `file "relative/x": path must be absolute`},
		{File{Path: "/x", Mode: 0o10000, HasMode: true}, `file "/x": mode 0o10000 out of range 0..0o7777`},
		{File{Path: "/y", Mode: -1, HasMode: true}, `file "/y": mode -0o1 out of range`},
		{File{Path: ""}, `file "": path must be absolute`},
	}
	for _, c := range cases {
		_, err := FilesArchive([]File{c.f})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FilesArchive(%+v) err = %v, want containing %q", c.f, err, c.want)
		}
	}
}

func TestOverlay(t *testing.T) {
	if _, err := Overlay(nil, nil); err == nil {
		t.Fatal("Overlay accepted an empty agent")
	}
	a, err := Overlay([]byte("agent"), nil, File{Path: "/etc/extra", Content: []byte("e")})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := parseNewc(t, a.Bytes())
	var names []string
	for _, e := range entries {
		names = append(names, e.name)
	}
	if got := strings.Join(names, " "); got != "etc etc/extra sbin sbin/provium-agent" {
		t.Fatalf("overlay entries = %q", got)
	}
}
