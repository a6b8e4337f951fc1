package cli

import (
	"strings"
	"testing"
)

// TestReplBootErrorPrefix: a REPL whose VM cannot boot reports the error
// once prefixed `provium: `, naming the VM, exit 2.
func TestReplBootErrorPrefix(t *testing.T) {
	dir := writeTree(t, map[string]string{"provium.toml": "[profiles.linux]\nkernel = \"/nonexistent/vmlinux\"\ncmdline = \"console=ttyS0\"\n"})
	code, _, errs := newInvocation(t, dir).exec("--accel", "tcg", "repl", "linux")
	if code != ExitUsage || !strings.HasPrefix(errs, "provium: repl: ") || !strings.Contains(errs, "vm `repl`") ||
		strings.Count(errs, "provium") != 1 || !strings.Contains(errs, "/nonexistent/vmlinux") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
