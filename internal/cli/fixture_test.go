package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
