package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCoverageRunsProviumCoverage(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.test.lua": `test("a", {spec = "x"}, function(t) end)`})
	bin := t.TempDir()
	tmp := t.TempDir()
	script := func(body string) {
		if err := os.WriteFile(filepath.Join(bin, "provium-coverage"), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := newInvocation(t, dir)
	in.vars["PATH"] = bin + ":/usr/bin:/bin"
	in.vars["TMPDIR"] = tmp

	// The step reads the run's events from the temporary, which is gone after.
	script(`echo "COV $1 $2 tmp=$PROVIUM_COVERAGE_TMP marker=$PROVIUM_COVERAGE_MARKER"; test -s "$2"`)
	code, out, errs := in.exec("--coverage")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	m := regexp.MustCompile(`COV --from (\S+) tmp=(\S+) marker=(\S+)\n`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || !strings.HasPrefix(m[1], filepath.Join(tmp, "provium-coverage-")) || m[3] != m[1]+".marker" {
		t.Fatalf("coverage step output: %q", out)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temporary event file left behind: %v", err)
	}

	// With --save-events the user's file is read and kept.
	script(`echo "COV $2 user=$PROVIUM_COVERAGE_USER_FILE"`)
	code, out, _ = in.exec("--coverage", "--save-events", "ev.bin")
	if code != ExitOK || !strings.Contains(out, "COV "+filepath.Join(dir, "ev.bin")+" user=1") {
		t.Fatalf("exit %d: %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ev.bin")); err != nil {
		t.Errorf("--save-events file removed: %v", err)
	}

	// A failing step turns exit 0 into 1; so does a missing binary.
	script(`exit 3`)
	code, _, errs = in.exec("--coverage")
	if code != ExitFailed || !strings.Contains(errs, "provium: provium-coverage exited with exit status 3") {
		t.Fatalf("failing step: exit %d, %q", code, errs)
	}
	os.Remove(filepath.Join(bin, "provium-coverage"))
	code, _, errs = in.exec("--coverage")
	if code != ExitFailed || !strings.Contains(errs, "provium: provium-coverage not on PATH: ") {
		t.Fatalf("missing binary: exit %d, %q", code, errs)
	}
}
