package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envMap is an Env backed by a map, so tests never touch the real environment.
func envMap(kv ...string) Env {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadString writes content to <tmp>/provium.toml and loads it.
func loadString(t *testing.T, content string, env Env) (*Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, content)
	cfg, err := LoadEnv(path, env)
	return cfg, path, err
}

const minimalProfile = `
[profiles.a]
kernel = "k"
cmdline = "quiet"
`

func TestLoadEmptyFile(t *testing.T) {
	cfg, path, err := loadString(t, "", envMap())
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Exists || cfg.Path != path || cfg.Dir != filepath.Dir(path) {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.CacheMaxSize != 20<<30 || cfg.PSIThreshold != 50 || len(cfg.Profiles) != 0 || len(cfg.Warnings) != 0 {
		t.Errorf("defaults wrong: %+v", cfg)
	}
}

func TestLoadReadError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, err := LoadEnv(path, envMap())
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != ReadError {
		t.Fatalf("err = %v, want ReadError", err)
	}
	if want := "read `" + path + "`: no such file or directory"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestLoadParseError(t *testing.T) {
	_, path, err := loadString(t, "[provium\n", envMap())
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != ParseError {
		t.Fatalf("err = %v, want ParseError", err)
	}
	if prefix := "parse `" + path + "`: toml: "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("err = %q, want prefix %q", err, prefix)
	}
}

func TestLoadDefault(t *testing.T) {
	dir := t.TempDir()
	cfg, err := LoadDefaultEnv(dir, envMap())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Exists || cfg.Dir != dir || len(cfg.Profiles) != 0 || cfg.CacheMaxSize != DefaultCacheMaxSize {
		t.Errorf("empty default config wrong: %+v", cfg)
	}
	if _, err := cfg.DefaultProfile(); err == nil || err.Error() != "no profiles in "+filepath.Join(dir, FileName) {
		t.Errorf("DefaultProfile err = %v", err)
	}

	writeFile(t, filepath.Join(dir, FileName), minimalProfile)
	cfg, err = LoadDefaultEnv(dir, envMap())
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Exists || cfg.Profiles["a"] == nil {
		t.Errorf("present file not loaded: %+v", cfg)
	}
}

func TestProviumSection(t *testing.T) {
	cfg, path, err := loadString(t, `
[provium]
roots = ["tests", "/abs/more", "~/home-tests"]
cache_dir = "cache"
cache_max_size = "1.5G"
accel = "tcg"
scratch_dir = "~/scratch"
psi_threshold = 0
`, envMap("HOME", "/home/u"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	wantRoots := []string{filepath.Join(dir, "tests"), "/abs/more", "/home/u/home-tests"}
	if !reflect.DeepEqual(cfg.Roots, wantRoots) {
		t.Errorf("roots = %v, want %v", cfg.Roots, wantRoots)
	}
	if cfg.CacheDirKey != filepath.Join(dir, "cache") || cfg.CacheDir() != filepath.Join(dir, "cache") {
		t.Errorf("cache_dir = %q", cfg.CacheDirKey)
	}
	if cfg.CacheMaxSize != 3<<29 {
		t.Errorf("cache_max_size = %d", cfg.CacheMaxSize)
	}
	if cfg.AccelKey != "tcg" || cfg.ScratchDir() != "/home/u/scratch" || cfg.PSIThreshold != 0 {
		t.Errorf("cfg = %+v", cfg)
	}
	cfg, _, err = loadString(t, "[provium]\ncache_max_size = 1048576\npsi_threshold = 12.5\n", envMap())
	if err != nil || cfg.CacheMaxSize != 1<<20 || cfg.PSIThreshold != 12.5 {
		t.Errorf("integer size / float psi: %v %+v", err, cfg)
	}
}

func TestProfileDefaultsAndKeys(t *testing.T) {
	cfg, path, err := loadString(t, minimalProfile+`
[profiles.full]
root = "rootfs"
initrd = "/abs/initrd.gz"
cmdline_file = "cmd.txt"
guest_os = "peios"
inject_agent = false
agent_overlay_path = "~/overlay.cpio.gz"
agent_boot_timeout = 2.5
disks = [{path = "d.img", id = "data"}, {path = "/x.img", id = "ro", readonly = true}]
build = "make OUT={out}"
build_out = "out"
memory = "1000K"
cpus = 4
kernel_boot = "pvh"
arch = "x86_64"
machine = "microvm"
`, envMap("HOME", "/home/u"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	a := cfg.Profiles["a"]
	wantA := &Profile{
		Name: "a", Source: path, Dir: dir, Out: filepath.Join(dir, ".provium-build", "a"),
		Kernel: filepath.Join(dir, "k"), Cmdline: "quiet", GuestOS: "linux", InjectAgent: true,
		AgentBootTimeout: 30 * time.Second, Memory: 512 << 20, CPUs: 1,
		KernelBoot: "auto", Arch: "x86_64", Machine: "q35", Firmware: "auto",
	}
	if !reflect.DeepEqual(a, wantA) {
		t.Errorf("profile a =\n%+v\nwant\n%+v", a, wantA)
	}
	out := filepath.Join(dir, "out")
	wantFull := &Profile{
		Name: "full", Source: path, Dir: dir, Out: out,
		Root: filepath.Join(dir, "rootfs"), Initrd: "/abs/initrd.gz",
		CmdlineFile: filepath.Join(dir, "cmd.txt"), GuestOS: "peios", GuestOSNamed: true, InjectAgent: false,
		AgentOverlayPath: "/home/u/overlay.cpio.gz", AgentBootTimeout: 2500 * time.Millisecond,
		Disks:    []Disk{{Path: filepath.Join(dir, "d.img"), ID: "data"}, {Path: "/x.img", ID: "ro", ReadOnly: true}},
		Build:    "make OUT=" + out,
		BuildOut: out, Memory: 1 << 20, CPUs: 4, KernelBoot: "pvh", Arch: "x86_64", Machine: "microvm", Firmware: "auto",
	}
	if got := cfg.Profiles["full"]; !reflect.DeepEqual(got, wantFull) {
		t.Errorf("profile full =\n%+v\nwant\n%+v", got, wantFull)
	}
	if names := cfg.ProfileNames(); !reflect.DeepEqual(names, []string{"a", "full"}) {
		t.Errorf("names = %v", names)
	}
	if p, err := cfg.DefaultProfile(); err != nil || p.Name != "a" {
		t.Errorf("default profile = %v, %v", p, err)
	}
	if _, err := cfg.Profile("zz"); err == nil || err.Error() != "profile `zz` not found in provium.toml" {
		t.Errorf("unknown profile err = %v", err)
	}
}

func TestDisksArrayOfTables(t *testing.T) {
	cfg, _, err := loadString(t, minimalProfile+`
[[profiles.a.disks]]
path = "/one"
id = "one"
[[profiles.a.disks]]
path = "/two"
id = "two"
`, envMap())
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{{Path: "/one", ID: "one"}, {Path: "/two", ID: "two"}}
	if got := cfg.Profiles["a"].Disks; !reflect.DeepEqual(got, want) {
		t.Errorf("disks = %+v", got)
	}
}

func TestOutExpansion(t *testing.T) {
	const prof = `
[profiles.p]
kernel = "{out}/bzImage"
initrd = "{out}/initrd.gz"
cmdline = "root={out}/x"
build = "build.sh {out}"
disks = [{path = "{out}/disk.img", id = "d"}]
`
	cfg, path, err := loadString(t, prof, envMap())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	out := filepath.Join(dir, ".provium-build", "p")
	p := cfg.Profiles["p"]
	if p.Out != out || p.Kernel != out+"/bzImage" || p.Initrd != out+"/initrd.gz" ||
		p.Cmdline != "root="+out+"/x" || p.Build != "build.sh "+out || p.Disks[0].Path != out+"/disk.img" {
		t.Errorf("default {out} expansion wrong: %+v", p)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("load created {out}; it must only be created before a build")
	}

	cfg, _, err = loadString(t, prof, envMap("PROVIUM_BUILD_DIR", "/b"))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Profiles["p"]; p.Out != "/b/p" || p.Kernel != "/b/p/bzImage" {
		t.Errorf("PROVIUM_BUILD_DIR expansion wrong: %+v", p)
	}

	cfg, _, err = loadString(t, prof+"build_out = \"/pinned\"\n", envMap("PROVIUM_BUILD_DIR", "/b"))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Profiles["p"]; p.Out != "/pinned" || p.Kernel != "/pinned/bzImage" {
		t.Errorf("build_out expansion wrong: %+v", p)
	}
}

func TestUnknownKeyWarnings(t *testing.T) {
	cfg, path, err := loadString(t, `
extra = 1
[provium]
rootz = []
[profiles.a]
kernel = "k"
cmdline = "c"
colour = "red"
disks = [{path = "/d", id = "d", size = "1G"}]
`, envMap())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("warning: %s: unknown key `extra`", path),
		fmt.Sprintf("warning: %s: unknown key `provium.rootz`", path),
		fmt.Sprintf("warning: %s: unknown key `profiles.a.disks.size`", path),
		fmt.Sprintf("warning: %s: unknown key `profiles.a.colour`", path),
	}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("warnings =\n%q\nwant\n%q", cfg.Warnings, want)
	}
}

// NamedGuestOS is what the profile itself says, not the effective
// default: bridge addressing defaults depend on the difference.
func TestNamedGuestOS(t *testing.T) {
	cfg, _, err := loadString(t, minimalProfile+`
[profiles.l]
kernel = "k"
cmdline = "quiet"
guest_os = "linux"

[profiles.p]
kernel = "k"
cmdline = "quiet"
guest_os = "peios"
`, envMap())
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Profiles["a"]; a.GuestOS != DefaultGuestOS || a.GuestOSNamed {
		t.Errorf("absent key: GuestOS %q, named %v; want the default, not named", a.GuestOS, a.GuestOSNamed)
	}
	cfg.WithImplicitLinux("/img/vmlinux", "/img/initrd", "console=ttyS0")
	for name, want := range map[string]string{"a": "", "l": "linux", "p": "peios", ImplicitProfile: "linux", "missing": ""} {
		if got := cfg.NamedGuestOS(name); got != want {
			t.Errorf("NamedGuestOS(%s) = %q, want %q", name, got, want)
		}
	}
}
