package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// cachedDebs is a directory of previously downloaded image .debs, or ""
// (then the build downloads them with apt-get, as in CI).
func cachedDebs() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "provium", "test-image", "debs")
	if m, _ := filepath.Glob(filepath.Join(dir, "linux-image-*.deb")); len(m) == 0 {
		return ""
	}
	return dir
}

// TestImageBuild builds the image once (the expensive part) and checks the
// outputs, the reuse and --force on it.
func TestImageBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a guest image")
	}
	out := filepath.Join(t.TempDir(), "img")
	in := newInvocation(t, t.TempDir())
	args := []string{"image", "build", "--out", out}
	if debs := cachedDebs(); debs != "" {
		args = append(args, "--from-debs", debs)
	}
	code, stdout, stderr := in.exec(args...)
	if code != ExitOK {
		t.Fatalf("image build: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "image: wrote "+out) {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	// stdout is exactly one [profiles.linux] block, usable as provium.toml.
	if !strings.HasPrefix(stdout, "[profiles.linux]\n") || strings.Count(stdout, "[") != 1 {
		t.Fatalf("stdout is not only the profile block:\n%s", stdout)
	}
	var doc struct {
		Profiles map[string]struct {
			Kernel  string `toml:"kernel"`
			Initrd  string `toml:"initrd"`
			Cmdline string `toml:"cmdline"`
			GuestOS string `toml:"guest_os"`
		} `toml:"profiles"`
	}
	if _, err := toml.Decode(stdout, &doc); err != nil {
		t.Fatalf("profile block does not parse: %v\n%s", err, stdout)
	}
	p := doc.Profiles["linux"]
	if !filepath.IsAbs(p.Kernel) || !filepath.IsAbs(p.Initrd) || !strings.HasPrefix(p.Cmdline, "console=ttyS0 quiet") || p.GuestOS != "linux" {
		t.Errorf("profile = %+v", p)
	}
	for _, f := range []string{p.Kernel, p.Initrd} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 || !strings.HasPrefix(f, out+"/") {
			t.Errorf("artifact %s: %v", f, err)
		}
	}

	// A second build reuses the image and prints the same block.
	code, again, stderr := in.exec("image", "build", "--out", out)
	if code != ExitOK || again != stdout || !strings.Contains(stderr, "reusing") {
		t.Errorf("rebuild: exit %d, stdout %q, stderr %q", code, again, stderr)
	}

	// --force does not reuse: with a .deb directory that does not exist it
	// must fail rather than return the existing image.
	missing := filepath.Join(t.TempDir(), "none")
	code, forced, stderr := in.exec("image", "build", "--out", out, "--force", "--from-debs", missing)
	if code != ExitUsage || forced != "" || !strings.HasPrefix(stderr, "provium: image build: ") {
		t.Errorf("--force: exit %d, stdout %q, stderr %q", code, forced, stderr)
	}
}

func TestImageBuildUsage(t *testing.T) {
	in := newInvocation(t, t.TempDir())
	code, out, errOut := in.exec("image", "build", "extra")
	if code != ExitUsage || out != "" || !strings.Contains(errOut, "Run 'provium --help' for usage.") {
		t.Errorf("extra arg: exit %d %q %q", code, out, errOut)
	}
}

func TestDefaultImageDir(t *testing.T) {
	env := func(vars map[string]string) *Env {
		return &Env{LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	}
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/provium/image"},
		{map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "rel"}, "/h/.cache/provium/image"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/provium/image"},
	}
	for _, c := range cases {
		if got, err := defaultImageDir(env(c.vars)); err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %q", c.vars, got, err, c.want)
		}
	}
	if _, err := defaultImageDir(env(nil)); err == nil {
		t.Error("no HOME: no error")
	}
}
