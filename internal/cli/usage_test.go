package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	dir := suiteDir(t)
	const hint = "Run 'provium --help' for usage.\n"
	cases := []struct {
		name   string
		args   []string
		stderr string
		hint   bool
	}{
		{"unknown flag", []string{"--bogus"}, "provium: unknown flag: --bogus\n", true},
		{"missing path", []string{"nope"}, "provium: `nope`: no such file or directory\n", true},
		{"not a test file", []string{"provium.toml"}, "provium: `provium.toml` is not a *.test.lua file\n", true},
		{"quiet and verbose", []string{"-q", "-v"}, "provium: --quiet cannot be used with --verbose\n", true},
		{"vmm local", []string{"--vmm", "local"}, "provium: the local backend is not provided: Provium runs guests under TCG when KVM is missing (see provium doctor)\n", false},
		{"bad timeout", []string{"--timeout", "soon"}, "provium: --timeout: cannot parse `soon` (try `300`, `30s`, `10m`, `2h`)\n", true},
		{"bad shard", []string{"--shard", "3/2"}, "provium: --shard: expected I/N with 1 ≤ I ≤ N, got `3/2`\n", true},
		{"bad tag-meta", []string{"--tag-meta", "=x"}, "provium: --tag-meta: expected KEY=VALUE, got \"=x\" (KEY must be non-empty)\n", true},
		{"bad no-tag-meta", []string{"--no-tag-meta", "novalue"}, "provium: --no-tag-meta: expected KEY=VALUE, got \"novalue\" (KEY must be non-empty)\n", true},
		{"bad accel", []string{"--accel", "fast"}, "provium: --accel: expected `auto`, `kvm` or `tcg`, got `fast`\n", true},
		{"bad seed", []string{"--seed", "-1"}, "", true},
		{"bad jobs", []string{"-j", "-1"}, "provium: --jobs: expected a number ≥ 0, got -1\n", true},
		{"list bad flag", []string{"list", "--nope"}, "provium: unknown flag: --nope\n", true},
		{"bad mem", []string{"--mem", "lots"}, "provium: --mem: cannot parse size `lots`\n", true},
		{"zero mem", []string{"--mem", "0"}, "", true},
		{"bad cpus", []string{"--cpus", "-2"}, "provium: --cpus: expected a number ≥ 1, got -2\n", true},
		{"bad overcommit", []string{"--cpu-overcommit", "much"}, "provium: --cpu-overcommit: expected a number, got `much`\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := newInvocation(t, dir).exec(c.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			want := c.stderr
			if c.hint {
				want += hint
			}
			if c.stderr == "" {
				if !strings.HasPrefix(errOut, "provium: ") || !strings.HasSuffix(errOut, hint) {
					t.Errorf("stderr %q", errOut)
				}
			} else if errOut != want {
				t.Errorf("stderr\n got %q\nwant %q", errOut, want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	bad := writeTree(t, map[string]string{"provium.toml": "[provium\nroots = 1\n", "a.test.lua": `test("a", function(t) end)`})
	code, out, errOut := newInvocation(t, bad).exec()
	if code != ExitUsage || out != "" || !strings.HasPrefix(errOut, "provium: parse `"+filepath.Join(bad, "provium.toml")+"`: ") {
		t.Errorf("bad TOML: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "--help") {
		t.Errorf("config errors are not usage errors: %q", errOut)
	}

	missing := filepath.Join(bad, "other.toml")
	code, _, errOut = newInvocation(t, bad).exec("--config", missing)
	if code != ExitUsage || errOut != "provium: read `"+missing+"`: no such file or directory\n" {
		t.Errorf("missing --config: exit %d, stderr %q", code, errOut)
	}

	invalid := writeTree(t, map[string]string{"provium.toml": "[profiles.p]\nkernel = \"k\"\ncmdline = \"\"\n"})
	code, _, errOut = newInvocation(t, invalid).exec()
	if code != ExitUsage || !strings.HasPrefix(errOut, "provium: invalid config in `") {
		t.Errorf("invalid config: exit %d, stderr %q", code, errOut)
	}

	warn := writeTree(t, map[string]string{"provium.toml": "[provium]\nbogus = 1\n", "a.test.lua": `test("a", function(t) end)`})
	code, out, errOut = newInvocation(t, warn).exec()
	if code != ExitOK || !strings.Contains(errOut, "provium: warning: ") || !strings.Contains(errOut, "unknown key `provium.bogus`") {
		t.Errorf("unknown key: exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "PASS a.test.lua (1 passed, 0 failed, 0 skipped)\n") {
		t.Errorf("run with a warning: %q", out)
	}

	noRoot := writeTree(t, map[string]string{"provium.toml": "[provium]\nroots = [\"gone\"]\n"})
	code, out, errOut = newInvocation(t, noRoot).exec()
	if code != ExitOK || out != msgNothingFound+"\n" || !strings.Contains(errOut, "provium: warning: root `") {
		t.Errorf("missing root: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	in := newInvocation(t, t.TempDir())
	in.vars["PROVIUM_ACCEL"] = "warp"
	code, _, errOut = in.exec()
	if code != ExitUsage || errOut != "provium: PROVIUM_ACCEL: expected `auto`, `kvm` or `tcg`, got `warp`\n" {
		t.Errorf("bad PROVIUM_ACCEL: exit %d, stderr %q", code, errOut)
	}
}

func TestNothingFound(t *testing.T) {
	empty := t.TempDir()
	code, out, errOut := newInvocation(t, empty).exec()
	if code != ExitOK || out != "provium: no *.test.lua files found\n" || errOut != "" {
		t.Errorf("plain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = newInvocation(t, empty).exec("--json")
	if code != ExitOK || out != `{"type":"no_files","message":"no *.test.lua files found"}`+"\n" {
		t.Errorf("json: exit %d, stdout %q", code, out)
	}
	code, out, _ = newInvocation(t, suiteDir(t)).exec("--filter", "no-such-file")
	if code != ExitOK || out != "provium: no *.test.lua files found\n" {
		t.Errorf("filtered to nothing: exit %d, stdout %q", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	if code, _, errOut := in.exec("pack.test.lua", "skips.test.lua", "todo.test.lua"); code != ExitOK {
		t.Errorf("clean files: exit %d; %s", code, errOut)
	}
	if code, _, _ := in.exec("sticky.test.lua"); code != ExitFailed {
		t.Errorf("failed test: exit %d, want 1", code)
	}
	if code, _, _ := in.exec("syntax.test.lua"); code != ExitFailed {
		t.Errorf("chunk error: exit %d, want 1", code)
	}
}

func TestFileTimeout(t *testing.T) {
	dir := suiteDir(t)
	want := []fileWant{{path: ".looping/forever.test.lua", timedOut: true, tests: []testWant{
		pass("first passes"),
		fail("spins", "file timed out after 500ms"),
		fail("never reached", "not run: file timed out"),
	}}}
	code, out, _ := newInvocation(t, dir).exec("--json", "--timeout", "500ms", ".looping/forever.test.lua")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	checkJSONAgainst(t, dir, out, want)

	junit := filepath.Join(t.TempDir(), "j.xml")
	code, out, _ = newInvocation(t, dir).exec("--timeout", "0.5", "--junit", junit, ".looping/forever.test.lua")
	if code != ExitFailed || !strings.HasPrefix(out, "TIME .looping/forever.test.lua (1 passed, 2 failed, 0 skipped)\n") {
		t.Errorf("plain: exit %d\n%s", code, out)
	}
	if !regexp.MustCompile(`(?m)^1 file\(s\); 1 passed, 2 failed, 0 skipped, 1 file\(s\) errored; `).MatchString(out) {
		t.Errorf("summary:\n%s", out)
	}
	doc := readJUnit(t, junit)
	cases := doc.Suites[0].Cases
	last := cases[len(cases)-1]
	if doc.Errors != 1 || last.Name != "(file)" || last.Error == nil || last.Error.Type != "timed_out" {
		t.Errorf("junit: errors=%d last case %+v", doc.Errors, last)
	}
}

func TestJUnitWriteFailure(t *testing.T) {
	dir := suiteDir(t)
	path := filepath.Join(t.TempDir(), "missing-dir", "r.xml")
	code, out, errOut := newInvocation(t, dir).exec("--no-ksm", "--junit", path, "pack.test.lua")
	if code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.HasPrefix(out, "PASS pack.test.lua") || !strings.HasPrefix(errOut, "provium: junit: ") {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
}

func TestPreflight(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 70))
	in.vars["XDG_RUNTIME_DIR"] = long
	scratch := filepath.Join(long, "provium")
	code, out, errOut := in.exec("pack.test.lua")
	want := "provium: scratch: `" + scratch + "` is too long for unix socket paths (" +
		strconv.Itoa(len(scratch)) + " > 64 bytes)\n  → set `[provium] scratch_dir` to a short, writable directory\n"
	if code != ExitUsage || out != "" || errOut != want {
		t.Errorf("exit %d, stdout %q, stderr\n got %q\nwant %q", code, out, errOut, want)
	}
	if code, _, _ := in.exec("--no-preflight", "pack.test.lua"); code != ExitOK {
		t.Errorf("--no-preflight: exit %d", code)
	}

	in = newInvocation(t, dir)
	file := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	in.vars["PROVIUM_CACHE_DIR"] = filepath.Join(file, "cache")
	code, _, errOut = in.exec("pack.test.lua")
	if code != ExitUsage || !strings.HasPrefix(errOut, "provium: cache: `"+filepath.Join(file, "cache")+"` is not writable: ") ||
		!strings.Contains(errOut, "\n  → ") {
		t.Errorf("cache check: exit %d, stderr %q", code, errOut)
	}
}

func TestAnnotations(t *testing.T) {
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	in.vars["GITHUB_ACTIONS"] = "true"
	_, out, _ := in.exec("assertions.test.lua", "chunk_error.test.lua")
	for _, l := range []string{
		"::error file=assertions.test.lua,line=11::assert fails by default message: assertions.test.lua:11: assertion failed",
		"::error file=chunk_error.test.lua,line=4::chunk_error.test.lua:4: top level broke",
	} {
		if !containsLine(out, l) {
			t.Errorf("no annotation %q in\n%s", l, out)
		}
	}
	// With --json the annotations move to stderr so stdout stays JSON.
	_, out, errOut := in.exec("--json", "chunk_error.test.lua")
	parseJSONLines(t, out)
	if !strings.Contains(errOut, "::error file=chunk_error.test.lua,line=4::") {
		t.Errorf("json mode annotations: %q", errOut)
	}
}
