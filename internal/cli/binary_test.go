package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// buildBinary builds cmd/provium once per test that needs it.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "provium")
	cmd := exec.Command("go", "build", "-ldflags",
		"-X github.com/provium/provium/internal/cli.buildVersion=v0.0.0-test -X github.com/provium/provium/internal/cli.buildCommit=abc123",
		"-o", bin, "../../cmd/provium")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binaryEnv isolates the child like newInvocation does. It keeps the Go
// toolchain's caches, though: the child builds the guest agent from source,
// and with HOME moved that build would start from an empty build and module
// cache (about a minute on a loaded two-core host, longer than the waits
// below, and a download from the module proxy).
func binaryEnv(t *testing.T, in *invocation) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH")}
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	for i, v := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if v != "" {
			env = append(env, []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY"}[i]+"="+v)
		}
	}
	for k, v := range in.vars {
		env = append(env, k+"="+v)
	}
	return env
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := suiteDir(t)
	in := newInvocation(t, dir)

	out, err := exec.Command(bin, "version").Output()
	if err != nil || !versionRE.MatchString(string(out)) || !strings.HasPrefix(string(out), "provium v0.0.0-test (abc123, ") {
		t.Errorf("version: %v %q", err, out)
	}

	cmd := exec.Command(bin, "--no-ksm", "--json", "--seed", "3")
	cmd.Dir = dir
	cmd.Env = binaryEnv(t, in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("suite run: %v; stderr:\n%s", err, stderr.String())
	}
	if got := len(parseJSONLines(t, stdout.String())); got != len(suiteWant()) {
		t.Errorf("%d JSON lines, want %d", got, len(suiteWant()))
	}
	if !strings.Contains(stderr.String(), "seed 3 (reproduce with --seed 3)\n") {
		t.Errorf("stderr %q", stderr.String())
	}

	cmd = exec.Command(bin, "--nope")
	cmd.Dir = dir
	cmd.Env = binaryEnv(t, in)
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || string(out) != "provium: unknown flag: --nope\nRun 'provium --help' for usage.\n" {
		t.Errorf("bad flag: %v %q", err, out)
	}
}

// SIGINT during a run: the running file is stopped, the summary printed,
// the rerun state written, and the process then dies of SIGINT.
func TestBinarySIGINT(t *testing.T) {
	bin := buildBinary(t)
	dir := suiteDir(t)
	in := newInvocation(t, dir)
	mark := filepath.Join(t.TempDir(), "spinning")
	junit := filepath.Join(t.TempDir(), "j.xml")
	cmd := exec.Command(bin, "--no-ksm", "--timeout", "0", "--junit", junit, ".looping/forever.test.lua")
	cmd.Dir = dir
	cmd.Env = append(binaryEnv(t, in), "PROVIUM_SELFTEST_MARK="+mark)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file to start spinning", func() bool {
		_, err := os.Stat(mark)
		return err == nil
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("exit status %v, want death by SIGINT", ws)
	}
	if !strings.Contains(stdout.String(), "\n1 file(s); 1 passed, ") {
		t.Errorf("no summary:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if _, err := os.Stat(in.vars["PROVIUM_RERUN_STATE"]); err != nil {
		t.Errorf("rerun state: %v", err)
	}
	if _, err := os.Stat(junit); err != nil {
		t.Errorf("junit: %v", err)
	}
}
