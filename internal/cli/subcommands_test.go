package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestList(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	code, out, _ := in.exec("list")
	var want strings.Builder
	files := suiteWant()
	for _, fw := range files {
		want.WriteString("  " + fw.path + "\n")
	}
	want.WriteString("\n" + strconv.Itoa(len(files)) + " test(s) found\n")
	if code != ExitOK || out != want.String() {
		t.Errorf("list: exit %d\n%s\nwant\n%s", code, out, want.String())
	}
	code, out, _ = in.exec("list", "--fixtures")
	if code != ExitOK || out != "  fixtures/base.fixture.lua\n\n1 fixture(s) found\n" {
		t.Errorf("list --fixtures: exit %d %q", code, out)
	}
	code, out, _ = in.exec("list", "--filter", "todo", "sub")
	if code != ExitOK || out != "\n0 test(s) found\n" {
		t.Errorf("list --filter with a path: exit %d %q", code, out)
	}
	code, out, _ = in.exec("list", "--filter", "todo")
	if code != ExitOK || out != "  todo.test.lua\n  todo_reason.test.lua\n\n2 test(s) found\n" {
		t.Errorf("list --filter: exit %d %q", code, out)
	}
	// A path named like a subcommand is written ./list.
	code, _, errOut := in.exec("./list")
	if code != ExitUsage || !strings.HasPrefix(errOut, "provium: `./list`: no such file or directory") {
		t.Errorf("./list: exit %d %q", code, errOut)
	}
}

func TestLSPSetup(t *testing.T) {
	dir := t.TempDir()
	in := newInvocation(t, dir)
	code, out, _ := in.exec("lsp-setup", dir)
	types := filepath.Join(dir, ".provium-meta", "types.lua")
	rc := filepath.Join(dir, ".luarc.json")
	if code != ExitOK || out != "  wrote "+types+"\n  wrote "+rc+"\n" {
		t.Errorf("lsp-setup: exit %d %q", code, out)
	}
	code, out, _ = in.exec("lsp-setup", dir)
	if code != ExitOK || !strings.Contains(out, "  "+rc+" already exists; not overwriting (pass --force to replace).\n") {
		t.Errorf("second lsp-setup: exit %d %q", code, out)
	}
	code, out, _ = in.exec("lsp-setup", "--force", dir)
	if code != ExitOK || !strings.HasSuffix(out, "  wrote "+rc+"\n") {
		t.Errorf("lsp-setup --force: exit %d %q", code, out)
	}
	code, _, errOut := in.exec("lsp-setup", "no-such-dir")
	if code != ExitUsage || !strings.HasPrefix(errOut, "provium: `no-such-dir` is not a directory\n") {
		t.Errorf("lsp-setup missing dir: exit %d %q", code, errOut)
	}
}

var versionRE = regexp.MustCompile(`^provium \S+ \(\S+, linux/amd64, go1\.\d+\S*, Lua 5\.4\.\d+\)\n$`)

func TestVersion(t *testing.T) {
	in := newInvocation(t, t.TempDir())
	code, out, _ := in.exec("version")
	if code != ExitOK || !versionRE.MatchString(out) {
		t.Errorf("version: exit %d %q", code, out)
	}
	code, out2, _ := in.exec("--version")
	if code != ExitOK || out2 != out {
		t.Errorf("--version: exit %d %q, want %q", code, out2, out)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := newInvocation(t, t.TempDir()).exec("--help")
	if code != ExitOK {
		t.Errorf("--help: exit %d", code)
	}
	for _, flag := range []string{"--config", "--filter", "--include-slow", "--tag-meta", "--no-tag-meta", "--rerun-failed",
		"--since", "--watch", "--fail-fast", "--timeout", "--json", "--junit", "--shard", "--jobs", "--seed",
		"--no-progress", "--no-build", "--no-preflight", "--vmm", "--accel", "--verbose", "--quiet", "list", "prepare", "lsp-setup", "version", "completion"} {
		if !strings.Contains(out, flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}

// waitFor polls cond until it holds; the deadline only bounds a broken
// test, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.test.lua": `test("a", function(t) end)`})
	in := newInvocation(t, dir)
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- Execute(ctx, in.env(&out, &errb), []string{"--watch", "--rerun-failed"}) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	waitFor(t, "the first run", func() bool { return strings.Contains(out.String(), "1 file(s); 1 passed") })
	if !strings.Contains(errb.String(), msgWatchRerunDropped) {
		t.Errorf("no notice that --rerun-failed is dropped: %q", errb.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "b.test.lua"), []byte(`test("b", function(t) t:fail("b fails") end)`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the re-run", func() bool { return strings.Contains(out.String(), "2 file(s); 1 passed, 1 failed") })
	if !strings.Contains(errb.String(), msgWatchChange+"\n") {
		t.Errorf("no change notice: %q", errb.String())
	}
	// A broken config is reported and watching goes on.
	if err := os.WriteFile(filepath.Join(dir, "provium.toml"), []byte("[oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed iteration", func() bool {
		return strings.Contains(errb.String(), "provium --watch: iteration failed: parse `")
	})
	if err := os.Remove(filepath.Join(dir, "provium.toml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the run after the fix", func() bool { return strings.Count(out.String(), "2 file(s); 1 passed, 1 failed") == 2 })
	cancel()
	stopped = true
	if code := <-done; code != ExitFailed {
		t.Errorf("watch ended with %d, want the last iteration's 1", code)
	}
}

// TestWatchEditDuringRun: a file written while an iteration runs is a
// change, even though the run has already ended when the watcher looks. The
// first run's test creates c.test.lua itself; only a second iteration
// reports two files.
func TestWatchEditDuringRun(t *testing.T) {
	dir := t.TempDir()
	script := fmt.Sprintf(`test("a", function(t)
  local name = %q
  if not io.open(name, "r") then
    local f = assert(io.open(name, "w"))
    f:write('test("c", function(t) end)')
    f:close()
  end
end)`, filepath.Join(dir, "c.test.lua"))
	if err := os.WriteFile(filepath.Join(dir, "a.test.lua"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInvocation(t, dir)
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- Execute(ctx, in.env(&out, &errb), []string{"--watch"}) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the run that sees the file written by the first", func() bool {
		return strings.Contains(out.String(), "2 file(s); 2 passed")
	})
}

func TestWatchEmpty(t *testing.T) {
	dir := t.TempDir()
	in := newInvocation(t, dir)
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- Execute(ctx, in.env(&out, &errb), []string{"--watch"}) }()
	waitFor(t, "the empty notice", func() bool { return strings.Contains(errb.String(), msgWatchEmpty) })
	if err := os.WriteFile(filepath.Join(dir, "n.test.lua"), []byte(`test("n", function(t) end)`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new file's run", func() bool { return strings.Contains(out.String(), "PASS n.test.lua") })
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(out.String(), msgNothingFound) {
		t.Errorf("--watch printed the one-shot nothing-found line")
	}
}
