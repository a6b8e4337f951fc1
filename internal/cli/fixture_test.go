package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/fixture"
)

func TestFixtureSubcommandsAndRepl(t *testing.T) {
	in, _ := vmSuite(t, map[string]string{
		"tests/fixtures/base.fixture.lua": `local vm = provium:vm("base", "linux", {memory = "256M"}):boot()
vm:write_file("/tmp/x", "fx")
return vm:snapshot()
`,
		"tests/a.test.lua": `test("hit", function(t)
  t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/tmp/x"), "fx")
end)
`,
	})
	// Roots: tests/ (fixture names are root-relative).
	cfgPath := filepath.Join(in.cwd, "provium.toml")
	writeFile(t, cfgPath, "[provium]\nroots = [\"tests\"]\n\n"+readFile(t, cfgPath))
	cache := in.vars["PROVIUM_CACHE_DIR"]

	code, out, errOut := in.exec("fixture", "list")
	if code != 0 || out != "(no cache directory at "+cache+")\n" {
		t.Fatalf("list without a cache: %d %q %q", code, out, errOut)
	}
	code, out, _ = in.exec("fixture", "stale")
	if code != 0 || out != "  tests/fixtures/base.fixture.lua\n\n1 stale fixture(s)\n" {
		t.Fatalf("stale: %d %q", code, out)
	}
	code, out, errOut = in.exec("--accel", "tcg", "fixture", "build", "fixtures/base")
	entry := regexp.MustCompile(`^  built: (` + regexp.QuoteMeta(cache) + `/[0-9a-f]{64}\.snap)\n$`).FindStringSubmatch(out)
	if code != 0 || entry == nil {
		t.Fatalf("build: %d %q %q", code, out, errOut)
	}
	code, out, _ = in.exec("--accel", "tcg", "fixture", "build", "tests/fixtures/base.fixture.lua")
	if code != 0 || out != "  already built: "+entry[1]+"\n" {
		t.Fatalf("build again: %d %q", code, out)
	}
	code, out, _ = in.exec("fixture", "list")
	if code != 0 || !regexp.MustCompile(`^ +[0-9.]+ [KMG]?i?B  vm   [0-9a-f]{64}\n\n1 entries, `).MatchString(out) {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ = in.exec("fixture", "stale")
	if code != 0 || out != "\n0 stale fixture(s)\n" && out != "0 stale fixture(s)\n" {
		t.Fatalf("stale after build: %d %q", code, out)
	}
	code, out, errOut = in.exec("--accel", "tcg", "-j", "1", ".")
	if code != 0 {
		t.Fatalf("run using the fixture: %d\n%s\n%s", code, out, errOut)
	}

	// The REPL restores the fixture and binds vm.
	var stdout, stderr syncBuffer
	env := in.env(&stdout, &stderr)
	env.Stdin = strings.NewReader("vm:read_file(\"/tmp/x\")\nvm:name(), 1 + 1\nerror(\"boom\")\nexit()\n")
	code = Execute(context.Background(), env, []string{"--accel", "tcg", "repl", "--fixture", "fixtures/base"})
	want := "provium repl — booting VM `base` (profile `linux`)\n" +
		"provium> fx\nprovium> base\n2\nprovium> error: repl:1: boom\nprovium> bye\n"
	if code != 0 || stdout.String() != want {
		t.Fatalf("repl: %d\n%q\nwant\n%q\nstderr %s", code, stdout.String(), want, stderr.String())
	}

	code, out, _ = in.exec("--accel", "tcg", "fixture", "rebuild", "fixtures/base")
	if code != 0 || out != "  evicted cache entry for `fixtures/base`; rebuilding…\n  rebuilt: "+entry[1]+"\n" {
		t.Fatalf("rebuild: %d %q", code, out)
	}
	code, out, _ = in.exec("fixture", "clean")
	if code != 0 || out != "  removed 1 cache entries\n" {
		t.Fatalf("clean: %d %q", code, out)
	}
	code, _, errOut = in.exec("fixture", "build", "nope")
	if code != ExitUsage || !strings.Contains(errOut, "fixture `nope` not found in any test root") {
		t.Fatalf("missing fixture: %d %q", code, errOut)
	}
	code, _, errOut = in.exec("repl")
	if code != ExitUsage || errOut != "provium repl: profile is required (or pass --fixture)\n" {
		t.Fatalf("repl without profile: %d %q", code, errOut)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConcurrentLabFixtureBuildsOnce: `provium fixture build` of a lab
// fixture and a test run's lab_fixture of it (and two concurrent `fixture
// build`s) share one build lock: the fixture is built once. The chunk
// counts its builds in a host file and holds its build until the test
// releases it, after the other invocation has started and had time to
// reach the lock (if it had not, it still must not build: the entry is
// there by then).
func TestConcurrentLabFixtureBuildsOnce(t *testing.T) {
	tmp := t.TempDir()
	counter, release, started := filepath.Join(tmp, "builds"), filepath.Join(tmp, "release"), filepath.Join(tmp, "started")
	in, _ := vmSuite(t, map[string]string{
		"tests/fixtures/cluster.fixture.lua": fmt.Sprintf(`local f = assert(io.open(%q, "a"))
f:write("build\n")
f:close()
local function exists(p) local h = io.open(p) if h then h:close() end return h ~= nil end
while not exists(%q) do os.execute("sleep 0.1") end
local a = provium:vm("a", "linux", {memory = "256M"}):boot()
a:write_file("/tmp/who", "a")
return provium:snapshot()
`, counter, release),
		"tests/a.test.lua": fmt.Sprintf(`test("restores the lab fixture", function(t)
  assert(io.open(%q, "w")):close()
  local c = provium:lab_fixture("fixtures/cluster")
  t:assert_eq(c.a:read_file("/tmp/who"), "a")
end)
`, started),
	})
	cfgPath := filepath.Join(in.cwd, "provium.toml")
	writeFile(t, cfgPath, "[provium]\nroots = [\"tests\"]\n\n"+readFile(t, cfgPath))
	builds := func() int { b, _ := os.ReadFile(counter); return strings.Count(string(b), "build\n") }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	type outcome struct {
		code     int
		out, err string
	}
	// Invocations in one process share its pid, so each gets its own
	// scratch root (run-<pid>/ is removed when an invocation ends); the
	// cache directory is what they share.
	run := func(args ...string) chan outcome {
		own := *in
		own.vars = maps.Clone(in.vars)
		scratch, err := os.MkdirTemp("", "pvs")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(scratch) })
		own.vars["XDG_RUNTIME_DIR"] = scratch
		ch := make(chan outcome, 1)
		go func() {
			code, out, errOut := own.exec(args...)
			ch <- outcome{code, out, errOut}
		}()
		return ch
	}
	// The other invocation is on its way to the lock when released.
	grace := func() { time.Sleep(2 * time.Second) }
	buildArgs := []string{"--accel", "tcg", "fixture", "build", "fixtures/cluster"}

	// CLI first, then a test run.
	cli := run(buildArgs...)
	waitFor("the CLI build", func() bool { return builds() == 1 })
	testRun := run("--accel", "tcg", "-j", "1", "tests/a.test.lua")
	waitFor("the test run", func() bool { _, err := os.Stat(started); return err == nil })
	grace()
	writeFile(t, release, "")
	c, r := <-cli, <-testRun
	if c.code != 0 || !strings.HasPrefix(c.out, "  built lab fixture: ") {
		t.Fatalf("fixture build: %d %q %q", c.code, c.out, c.err)
	}
	if r.code != 0 {
		t.Fatalf("test run: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if n := builds(); n != 1 {
		t.Fatalf("CLI + test run built it %d times", n)
	}

	// Two CLIs.
	if code, out, errOut := in.exec("fixture", "clean"); code != 0 || out != "  removed 1 cache entries\n" {
		t.Fatalf("clean: %d %q %q", code, out, errOut)
	}
	if des, _ := os.ReadDir(in.vars["PROVIUM_CACHE_DIR"]); len(des) != 1 || des[0].Name() != fixture.IdentityFile {
		t.Fatalf("clean left %v", des)
	}
	os.Remove(release)
	os.Remove(counter)
	first := run(buildArgs...)
	waitFor("the first build", func() bool { return builds() == 1 })
	second := run(buildArgs...)
	grace()
	writeFile(t, release, "")
	a, b := <-first, <-second
	outs := []string{a.out, b.out}
	slices.Sort(outs)
	if a.code != 0 || b.code != 0 || !strings.HasPrefix(outs[0], "  already built: ") || !strings.HasPrefix(outs[1], "  built lab fixture: ") {
		t.Fatalf("two builds: %d %q %q / %d %q %q", a.code, a.out, a.err, b.code, b.out, b.err)
	}
	if n := builds(); n != 1 {
		t.Fatalf("two CLIs built it %d times", n)
	}
}
