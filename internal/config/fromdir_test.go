package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFromDir(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, FileName)
	writeFile(t, cfgPath, `
[profiles]
from_dir = "profiles"

[profiles.inline]
kernel = "k"
cmdline = "c"
`)
	pdir := filepath.Join(dir, "profiles")
	writeFile(t, filepath.Join(pdir, "alpha", profileFileName), `
kernel = "bzImage"
initrd = "{out}/initrd.gz"
cmdline = "quiet"
build = "make"
shade = "blue"
`)
	writeFile(t, filepath.Join(pdir, "beta", profileFileName), "root = \"/r\"\ncmdline_file = \"cmd\"\n")
	writeFile(t, filepath.Join(pdir, "notes", "README"), "not a profile")
	writeFile(t, filepath.Join(pdir, "stray.txt"), "file, not a dir")

	cfg, err := LoadEnv(cfgPath, envMap())
	if err != nil {
		t.Fatal(err)
	}
	if names := cfg.ProfileNames(); !reflect.DeepEqual(names, []string{"alpha", "beta", "inline"}) {
		t.Fatalf("profiles = %v", names)
	}
	alpha := cfg.Profiles["alpha"]
	adir := filepath.Join(pdir, "alpha")
	out := filepath.Join(dir, ".provium-build", "alpha")
	if alpha.Dir != adir || alpha.Source != filepath.Join(adir, profileFileName) {
		t.Errorf("alpha dir/source = %q %q", alpha.Dir, alpha.Source)
	}
	if alpha.Kernel != filepath.Join(adir, "bzImage") || alpha.Initrd != filepath.Join(out, "initrd.gz") || alpha.Out != out {
		t.Errorf("alpha paths: kernel %q initrd %q out %q", alpha.Kernel, alpha.Initrd, alpha.Out)
	}
	if beta := cfg.Profiles["beta"]; beta.CmdlineFile != filepath.Join(pdir, "beta", "cmd") {
		t.Errorf("beta cmdline_file = %q", beta.CmdlineFile)
	}
	if in := cfg.Profiles["inline"]; in.Dir != dir {
		t.Errorf("inline dir = %q", in.Dir)
	}
	want := []string{"warning: " + alpha.Source + ": unknown key `shade`"}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("warnings = %q, want %q", cfg.Warnings, want)
	}
}

func TestFromDirErrors(t *testing.T) {
	t.Run("holds no profile", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"p\"\n")
		writeFile(t, filepath.Join(dir, "p", "x", "other.toml"), "")
		_, err := LoadEnv(cfgPath, envMap())
		want := "invalid config in `" + cfgPath + "`: `" + filepath.Join(dir, "p") +
			"` holds no profile: a profile is a directory containing a profile.provium.toml"
		if err == nil || err.Error() != want {
			t.Errorf("err =\n%v\nwant\n%s", err, want)
		}
	})
	t.Run("inline and discovered", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"p\"\n[profiles.x]\nkernel = \"k\"\ncmdline = \"c\"\n")
		writeFile(t, filepath.Join(dir, "p", "x", profileFileName), "kernel = \"k\"\ncmdline = \"c\"\n")
		_, err := LoadEnv(cfgPath, envMap())
		want := "invalid config in `" + cfgPath + "`: profile `x` is both written inline and discovered in `" +
			filepath.Join(dir, "p") + "`; rename one"
		if err == nil || err.Error() != want {
			t.Errorf("err =\n%v\nwant\n%s", err, want)
		}
	})
	t.Run("bad profile file", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"p\"\n")
		file := filepath.Join(dir, "p", "x", profileFileName)
		writeFile(t, file, "kernel = \n")
		_, err := LoadEnv(cfgPath, envMap())
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != ParseError || ce.Path != file {
			t.Fatalf("err = %v, want parse error naming %s", err, file)
		}
		if !strings.HasPrefix(err.Error(), "parse `"+file+"`: ") {
			t.Errorf("err = %q", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"nope\"\n")
		_, err := LoadEnv(cfgPath, envMap())
		want := "read `" + filepath.Join(dir, "nope") + "`: no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("invalid discovered profile names its file", func(t *testing.T) {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"p\"\n")
		file := filepath.Join(dir, "p", "x", profileFileName)
		writeFile(t, file, "cmdline = \"c\"\n")
		_, err := LoadEnv(cfgPath, envMap())
		want := "invalid config in `" + file + "`: profile `x` sets neither `kernel` nor `root`; set one"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("unreadable profile file", func(t *testing.T) {
		// A directory in the file's place fails to read for any user.
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, FileName)
		writeFile(t, cfgPath, "[profiles]\nfrom_dir = \"p\"\n")
		file := filepath.Join(dir, "p", "x", profileFileName)
		if err := os.MkdirAll(file, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := LoadEnv(cfgPath, envMap())
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != ReadError || ce.Path != file {
			t.Fatalf("err = %v, want read error naming %s", err, file)
		}
		if want := "read `" + file + "`: is a directory"; err.Error() != want {
			t.Errorf("err = %q, want %q", err, want)
		}
	})
}
