package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTimeoutDiagnosisWithoutTheAgent: a test times out in a guest whose
// agent no longer answers (its serve process is stopped); the failure still
// carries the kernel's task dump, triggered by magic sysrq over the serial
// console, even though the image boots with `quiet`.
func TestTimeoutDiagnosisWithoutTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	in, scratch := vmSuite(t, map[string]string{
		"stopped.test.lua": `
local h = provium:vm("h", "linux", {memory = "256M"}):boot()
test("agent stopped", {timeout = 5}, function(t)
  h:run([[for p in /proc/[0-9]*; do
    case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in *--serve-port*) kill -STOP ${p#/proc/};; esac
  done]])
end)
`,
	})
	cfg, _ := os.ReadFile(filepath.Join(in.cwd, "provium.toml"))
	os.WriteFile(filepath.Join(in.cwd, "provium.toml"), append(cfg, "agent_boot_timeout = 240\n"...), 0o644)
	code, stdout, stderr := in.exec("--accel", "tcg", "-j", "1", ".")
	if code != ExitFailed {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"test timed out after 5s\n",
		"--- h (diagnosis) ---",
		"the agent did not answer",
		"the kernel's task dump through the serial console follows",
		"sysrq: Show Blocked State",
		"sysrq: Show backtrace of all active CPUs",
		// The dump itself, not only sysrq's headers: the console
		// loglevel was raised despite `quiet`.
		"NMI backtrace for cpu 0",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("failure lacks %q:\n%s", want, stdout)
		}
	}
	assertNothingLeft(t, scratch)
}
