package cli

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/provium/provium/internal/guesttest"
)

// A folder holding only a *.test.lua that asks for profile `linux` runs
// against the default image, with no provium.toml.
func TestZeroConfigStart(t *testing.T) {
	guesttest.Image(t) // the default image exists (built once per machine)
	dir := writeTree(t, map[string]string{"only.test.lua": `
local vm = provium:vm("z", "linux", {memory = "256M", agent_timeout = 240})
test("boots the default image", function(t)
  vm:boot()
  t:assert_eq(vm:run("echo zero-config").stdout, "zero-config\n")
end)
test("an unknown profile says how to get one", function(t)
  local err = t:assert_raises(function() provium:vm("x", "nope") end)
  t:assert_contains(tostring(err), "provium image build >> provium.toml")
end)`})
	in := newInvocation(t, dir)
	in.vars["PATH"] = os.Getenv("PATH")
	code, out, errs := in.exec()
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "PASS only.test.lua (2 passed, 0 failed, 0 skipped)") {
		t.Fatalf("stdout:\n%s", out)
	}
	if !strings.Contains(errs, "profile `linux` is not declared; using the default image") {
		t.Errorf("no notice of the implicit profile:\n%s", errs)
	}

	// The REPL, also without a config, prints a stat table as its fields.
	var rout, rerr syncBuffer
	env := in.env(&rout, &rerr)
	env.Stdin = strings.NewReader("vm:stat(\"/etc/hosts\")\n")
	if code := Execute(context.Background(), env, []string{"repl", "linux"}); code != ExitOK {
		t.Fatalf("repl exit %d\n%s\n%s", code, rout.String(), rerr.String())
	}
	if !regexp.MustCompile(`provium> \{\n  entry_type = "file",\n(  [a-z_]+ = .*,\n)*  size = \d+,\n\}\n`).MatchString(rout.String()) {
		t.Errorf("repl output:\n%s", rout.String())
	}
}
