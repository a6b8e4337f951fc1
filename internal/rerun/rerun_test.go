package rerun

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/provium/provium/internal/discover"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestPath(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvVar: "/x/state.json", "HOME": "/home/u"}, "/x/state.json"},
		{map[string]string{EnvVar: "", "HOME": "/home/u"}, "/home/u/.cache/provium/rerun.json"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache/provium/rerun.json"},
		{map[string]string{"HOME": ""}, "/tmp/provium-rerun.json"},
		{map[string]string{}, "/tmp/provium-rerun.json"},
	}
	for _, c := range cases {
		if got := Path(envOf(c.env)); got != c.want {
			t.Errorf("env %v: got %q, want %q", c.env, got, c.want)
		}
	}
}

func TestNoStateMessage(t *testing.T) {
	want := "provium --rerun-failed: no prior failure state at `/s/r.json` — nothing to re-run. Run `provium <paths>` once to populate."
	if got := NoStateMessage("/s/r.json"); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deep", "er", "rerun.json")

	got, err := Load(path)
	if err != nil || got != nil {
		t.Fatalf("missing file: %v, %v; want no state", got, err)
	}

	want := []string{"/a/x.test.lua", "/b/y.test.lua"}
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	// Overwrite, and no temporary files are left behind.
	if err := Save(path, want[:1]); err != nil {
		t.Fatal(err)
	}
	got, _ = Load(path)
	if !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("overwrite: %v", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "rerun.json" {
		t.Errorf("directory holds %v, want only rerun.json", entries)
	}
}

func TestLoadEmptyAndBad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "blank": " \n", "emptyarray": "[]"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := Load(p); err != nil || got != nil {
			t.Errorf("%s: %v, %v; want no state", name, got, err)
		}
	}
	p := filepath.Join(dir, "bad")
	if err := os.WriteFile(p, []byte("{oops"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil {
		t.Error("corrupt state accepted")
	}
	if err := Save(filepath.Join(dir, "empty-save"), nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "empty-save")); string(data) != "[]\n" {
		t.Errorf("nil saved as %q", data)
	}
}

func TestSelect(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	files := []discover.File{
		{Display: "a", Canonical: filepath.Join(real, "a.test.lua")},
		{Display: "b", Canonical: filepath.Join(real, "b.test.lua")},
		{Display: "c", Canonical: filepath.Join(real, "c.test.lua")},
	}
	for _, f := range files {
		if err := os.WriteFile(f.Canonical, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := []string{
		filepath.Join(real, "c.test.lua"),
		filepath.Join(dir, "alias", "a.test.lua"), // through a symlink
		"/gone/z.test.lua",
	}
	got := Select(files, state)
	var names []string
	for _, f := range got {
		names = append(names, f.Display)
	}
	// Discovery order, not state order.
	if !reflect.DeepEqual(names, []string{"a", "c"}) {
		t.Errorf("selected %v, want [a c]", names)
	}
	if got := Select(files, nil); len(got) != 0 {
		t.Errorf("empty state selected %d files", len(got))
	}
}
