package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/guesttest"
)

// qemuUnder lists the QEMU processes whose command line mentions dir.
func qemuUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), "qemu-system") && strings.Contains(string(cmd), dir) {
			found = append(found, e.Name())
		}
	}
	return found
}

// assertNothingLeft checks that no QEMU and no run directory remain.
func assertNothingLeft(t *testing.T, scratch string) {
	t.Helper()
	if pids := qemuUnder(scratch); len(pids) > 0 {
		t.Errorf("QEMU still running: %v", pids)
	}
	runs, _ := filepath.Glob(filepath.Join(scratch, "provium", "run-*"))
	if len(runs) > 0 {
		t.Errorf("run directories left behind: %v", runs)
	}
}

func vmSuite(t *testing.T, files map[string]string) (*invocation, string) {
	t.Helper()
	img := guesttest.Image(t)
	files["provium.toml"] = img.Profile
	dir := writeTree(t, files)
	in := newInvocation(t, dir)
	return in, in.vars["XDG_RUNTIME_DIR"]
}

func TestVMsAreTornDownAfterPassFailAndTimeout(t *testing.T) {
	in, scratch := vmSuite(t, map[string]string{
		"pass.test.lua": `
local a = provium:vm("a", "linux", {memory = "256M"}):boot()
test("file vm and test vm", function(t)
  local b = provium:vm("b", "linux", {memory = "256M"}):boot()
  t:assert_eq(b:run("echo ok").stdout, "ok\n")
  t:assert_eq(a:run("echo ok").stdout, "ok\n")
end)`,
		"fail.test.lua": `
test("fails with a booted vm", function(t)
  local c = provium:vm("c", "linux", {memory = "256M"}):boot()
  c:run("echo CONSOLE-MARK > /dev/console")
  t:fail("on purpose")
end)`,
		"timeout.test.lua": `
test("loops with a booted vm", {timeout = "2s"}, function(t)
  provium:vm("d", "linux", {memory = "256M"}):boot()
  while true do end
end)`,
	})
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, stdout, stderr := in.exec("--accel", "tcg", "-j", "1", "--junit", junit, ".")
	if code != ExitFailed {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// A failed test carries the console tail of its VMs (10-lua-api.md
	// §2.5, 20-cli-config.md §4.5).
	if x, err := os.ReadFile(junit); err != nil || !strings.Contains(string(x), "--- console c ---") || !strings.Contains(string(x), "CONSOLE-MARK") {
		t.Errorf("junit lacks vm c's console tail (%v):\n%s", err, x)
	}
	for _, want := range []string{
		"FAIL fail.test.lua (0 passed, 1 failed, 0 skipped)",
		"PASS pass.test.lua (1 passed, 0 failed, 0 skipped)",
		"FAIL timeout.test.lua (0 passed, 1 failed, 0 skipped)",
	} {
		if !containsLine(stdout, want) {
			t.Errorf("missing %q in:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "test timed out after 2s") {
		t.Errorf("timeout message missing:\n%s", stdout)
	}
	assertNothingLeft(t, scratch)
}

func TestVMsAreTornDownOnInterrupt(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "booted")
	in, scratch := vmSuite(t, map[string]string{
		"hang.test.lua": `
local vm = provium:vm("h", "linux", {memory = "256M"}):boot()
test("hangs", function(t)
  local f = io.open("` + marker + `", "w"); f:write("up"); f:close()
  wait_until(function() return false end, {timeout = 3600})
end)`,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(marker); err == nil {
				cancel()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	code, stdout, _ := in.execCtx(ctx, "--accel", "tcg", ".")
	if code == ExitOK {
		t.Fatalf("an interrupted run exited 0:\n%s", stdout)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the VM never booted")
	}
	assertNothingLeft(t, scratch)
}

func TestProfileBuildRunsBeforeFirstBoot(t *testing.T) {
	img := guesttest.Image(t)
	toml := `
[profiles.built]
build = "cp ` + img.Vmlinux + ` {out}/vmlinux && echo built >> {out}/count"
kernel = "{out}/vmlinux"
initrd = "` + img.Initrd + `"
cmdline = "console=ttyS0 quiet"

[profiles.broken]
build = "echo compiling; exit 3"
kernel = "{out}/vmlinux"
cmdline = "console=ttyS0"
`
	dir := writeTree(t, map[string]string{
		"provium.toml": toml,
		"a.test.lua": `
test("boots the built profile twice", function(t)
  provium:vm("x", "built", {memory = "256M"}):boot()
  provium:vm("y", "built", {memory = "256M"}):boot()
end)`,
	})
	in := newInvocation(t, dir)
	code, stdout, stderr := in.exec("--accel", "tcg", "a.test.lua")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "provium: building profile `built` → ") {
		t.Errorf("no build notice in:\n%s", stderr)
	}
	count, err := os.ReadFile(filepath.Join(dir, ".provium-build", "built", "count"))
	if err != nil || string(count) != "built\n" {
		t.Fatalf("build ran %q times (err %v); want once", count, err)
	}

	os.WriteFile(filepath.Join(dir, "b.test.lua"), []byte(`
test("boots the broken profile", function(t)
  provium:vm("z", "broken"):boot()
end)`), 0o644)
	code, stdout, stderr = in.exec("--accel", "tcg", "b.test.lua")
	if code != ExitUsage {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "provium: profile `broken`: build command failed (exit code 3)") || !strings.Contains(stderr, "compiling") {
		t.Errorf("build failure not reported:\n%s", stderr)
	}
	// --no-build skips it: the boot then fails on the missing kernel instead.
	code, stdout, _ = in.exec("--accel", "tcg", "--no-build", "b.test.lua")
	if code != ExitFailed || !strings.Contains(stdout, "vmlinux") {
		t.Errorf("--no-build: exit %d\n%s", code, stdout)
	}
}

// TestVerboseVMDiagnostics: -v reports each VM lifecycle change on stderr
// as `provium: [<path>] vm <name>: <what>` (20-cli-config.md §4.2).
func TestVerboseVMDiagnostics(t *testing.T) {
	in, _ := vmSuite(t, map[string]string{
		"v.test.lua": `
test("lifecycle", function(t)
  local vm = provium:vm("x", "linux", {memory = "256M"}):boot()
  vm:pause()
  vm:resume()
  vm:shutdown()
end)`,
	})
	code, stdout, stderr := in.exec("--accel", "tcg", "-v", "v.test.lua")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"provium: [v.test.lua] vm x: booted in ",
		"provium: [v.test.lua] vm x: paused\n",
		"provium: [v.test.lua] vm x: resumed\n",
		"provium: [v.test.lua] vm x: shut down\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, _, quiet := in.exec("--accel", "tcg", "v.test.lua"); strings.Contains(quiet, "vm x:") {
		t.Errorf("VM diagnostics without -v:\n%s", quiet)
	}
}
