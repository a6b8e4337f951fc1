package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepare: `provium prepare` runs every profile's build and nothing
// else; `prepare P` only P's; an unknown profile is exit 2 with the
// specified message; a failing build fails the command.
func TestPrepare(t *testing.T) {
	toml := `
[profiles.one]
build = "echo one >> {out}/count"
kernel = "{out}/vmlinux"
cmdline = "console=ttyS0"

[profiles.two]
build = "echo two >> {out}/count"
kernel = "{out}/vmlinux"
cmdline = "console=ttyS0"

[profiles.plain]
kernel = "/nonexistent/vmlinux"
cmdline = "console=ttyS0"
`
	dir := writeTree(t, map[string]string{"provium.toml": toml, "a.test.lua": `test("never run", function(t) t:fail("prepare ran a test") end)`})
	count := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(dir, ".provium-build", p, "count"))
		return string(b)
	}
	in := newInvocation(t, dir)
	if code, out, errs := in.exec("prepare"); code != ExitOK || count("one") != "one\n" || count("two") != "two\n" {
		t.Fatalf("prepare: exit %d, counts %q %q\n%s\n%s", code, count("one"), count("two"), out, errs)
	}
	if code, _, errs := in.exec("prepare", "two"); code != ExitOK || count("one") != "one\n" || count("two") != "two\ntwo\n" {
		t.Fatalf("prepare two: exit %d, counts %q %q\n%s", code, count("one"), count("two"), errs)
	}
	code, _, errs := in.exec("prepare", "nope")
	if code != ExitUsage || errs != "provium prepare: profile `nope` not found in provium.toml\n" {
		t.Fatalf("unknown profile: exit %d, stderr %q", code, errs)
	}

	broken := writeTree(t, map[string]string{"provium.toml": "[profiles.bad]\nbuild = \"echo compiling; exit 3\"\nkernel = \"{out}/k\"\ncmdline = \"console=ttyS0\"\n"})
	code, _, errs = newInvocation(t, broken).exec("prepare")
	if code != ExitUsage || !strings.Contains(errs, "bad") {
		t.Fatalf("failing build: exit %d, stderr %q", code, errs)
	}
}

// TestPrepareOutput: prepare streams the build's output as `[build <name>]`
// lines only under -v (the log file always gets it), and warns about
// unknown provium.toml keys like run mode (20-cli-config.md §7.1, §7.4).
func TestPrepareOutput(t *testing.T) {
	toml := "[provium]\nrootz = 1\n\n[profiles.one]\nbuild = \"echo compiling one\"\nkernel = \"{out}/vmlinux\"\ncmdline = \"console=ttyS0\"\n"
	dir := writeTree(t, map[string]string{"provium.toml": toml})
	in := newInvocation(t, dir)
	logPath := filepath.Join(in.vars["XDG_RUNTIME_DIR"], "provium", "build-one.log")
	warning := "provium: warning: " + filepath.Join(dir, "provium.toml") + ": unknown key `provium.rootz`\n"

	code, _, errs := in.exec("prepare")
	if code != ExitOK || strings.Contains(errs, "[build one]") || !strings.Contains(errs, warning) {
		t.Fatalf("prepare without -v: exit %d, stderr %q", code, errs)
	}
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "compiling one") {
		t.Fatalf("build log %s: %q %v", logPath, b, err)
	}
	code, _, errs = in.exec("prepare", "-v")
	if code != ExitOK || !strings.Contains(errs, "[build one] compiling one\n") {
		t.Fatalf("prepare -v: exit %d, stderr %q", code, errs)
	}
}

// A profile's build finds the agent overlay in $PROVIUM_OVERLAY and takes
// the agent out of it with cpio, as peios/integration-tests' peinit
// profile does (upstream's builds read dist/agent-overlay.cpio.gz).
func TestPrepareExportsAgentOverlay(t *testing.T) {
	t.Setenv("PROVIUM_OVERLAY", "")
	toml := `
[profiles.img]
build = '''
set -eu
overlay=${PROVIUM_OVERLAY:-../../../provium/dist/agent-overlay.cpio.gz}
[ -r "$overlay" ] || { echo "no provium agent overlay at $overlay" >&2; exit 1; }
echo "$overlay" > {out}/overlay-path
mkdir -p {out}/agent
zcat "$overlay" | (cd {out}/agent && cpio --quiet -idm 'sbin/provium-agent')
'''
kernel = "{out}/vmlinux"
cmdline = "console=hvc0"
`
	dir := writeTree(t, map[string]string{"provium.toml": toml})
	in := newInvocation(t, dir)
	code, out, errs := in.exec("prepare")
	if code != ExitOK {
		t.Fatalf("prepare: exit %d\n%s\n%s", code, out, errs)
	}
	outDir := filepath.Join(dir, ".provium-build", "img")
	agent, err := os.ReadFile(filepath.Join(outDir, "agent", "sbin", "provium-agent"))
	if err != nil || !bytes.HasPrefix(agent, []byte("\x7fELF")) {
		t.Fatalf("the build extracted no agent binary: %d bytes, %v", len(agent), err)
	}
	p, _ := os.ReadFile(filepath.Join(outDir, "overlay-path"))
	overlay := strings.TrimSpace(string(p))
	if !filepath.IsAbs(overlay) || !strings.HasSuffix(overlay, ".cpio.gz") {
		t.Fatalf("PROVIUM_OVERLAY = %q", overlay)
	}
	st, err := os.Stat(overlay)
	if err != nil {
		t.Fatal(err)
	}
	// a second build gets the same file, untouched (builds fingerprint it)
	if code, out, errs := in.exec("prepare"); code != ExitOK {
		t.Fatalf("second prepare: exit %d\n%s\n%s", code, out, errs)
	}
	p, _ = os.ReadFile(filepath.Join(outDir, "overlay-path"))
	st2, err := os.Stat(strings.TrimSpace(string(p)))
	if err != nil || strings.TrimSpace(string(p)) != overlay || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("second build: overlay %q (%v), want %q with mtime %v", p, err, overlay, st.ModTime())
	}
}
