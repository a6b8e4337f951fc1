package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/sched"
)

// The pool's command-line side without guests: the overcommit clamp notice,
// the KSM line (tuned, not tuned, --no-ksm, -q) and the -v notice of a
// host without PSI.
func TestPoolFlagsAndNotices(t *testing.T) {
	dir := fakeTree(t, "a.test.lua")
	in := newInvocation(t, dir)

	code, _, errOut := in.exec("--cpu-overcommit", "12", "--mem", "1G", ".")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"provium: --cpu-overcommit 12 clamped to 8.0 (sane range 0.5–8.0)\n",
		"provium: ksm not tuned (" + in.ksm + " does not exist)\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, sched.MsgNoPSI) {
		t.Errorf("the no-PSI notice without -v:\n%s", errOut)
	}

	knobs := filepath.Join(t.TempDir(), "ksm")
	if err := os.MkdirAll(knobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"run", "pages_to_scan", "sleep_millisecs"} {
		if err := os.WriteFile(filepath.Join(knobs, n), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.ksm = knobs
	code, _, errOut = in.exec("-v", ".")
	if code != ExitOK || strings.Count(errOut, "provium: ksm tuned (run = on, pages_to_scan = 1000, sleep_millisecs = 100)\n") != 1 {
		t.Errorf("tuned: exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(knobs, "run")); string(b) != "1\n" {
		t.Errorf("run = %q", b)
	}
	if !strings.Contains(errOut, "provium: "+sched.MsgNoPSI+"\n") {
		t.Errorf("-v lacks the no-PSI notice:\n%s", errOut)
	}
	for _, args := range [][]string{{"--no-ksm", "."}, {"-q", "."}} {
		if code, _, errOut := in.exec(args...); code != ExitOK || strings.Contains(errOut, "ksm") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, errOut)
		}
	}
}
