package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/vmm"
)

// Preflight limits and fixes (20-cli-config.md §5).
const (
	qemuVersionTimeout = 5 * time.Second
	qemuMinMajor       = 7
	qemuMinMinor       = 2

	fixInstallQEMU   = "apt-get install qemu-system-x86"
	fixReinstallQEMU = "reinstall QEMU: apt-get install --reinstall qemu-system-x86"
	fixUpgradeQEMU   = "upgrade QEMU to 7.2 or newer (Debian 12: apt-get install qemu-system-x86)"
)

// preflightError is a failed environment check: `provium: <subject>:
// <problem>` and `  → <fix>`, exit 2.
type preflightError struct {
	problem string // starts with the subject
	fix     string
}

func (e *preflightError) Error() string { return e.problem }

// preflightInput is what the checks look at besides the configuration.
type preflightInput struct {
	// path is the PATH QEMU is looked up in.
	path string
	// accel is the requested acceleration (auto, kvm, tcg) and accelSource
	// where the request came from (config.AccelSource*).
	accel, accelSource string
	// probe configures the KVM probe; CacheDir "" keeps the verdict in the
	// scratch root.
	probe accel.Options
	// versionTimeout bounds `qemu --version`; 0 = qemuVersionTimeout.
	versionTimeout time.Duration
}

// checkEnvironment is what every command that boots guests (run mode,
// repl, fixture build|rebuild) does right after loading the config: pick
// the requested acceleration, then run the preflight unless
// --no-preflight (20-cli-config.md §5). It returns the requested accel.
func (s *session) checkEnvironment(ctx context.Context, cfg *config.Config) (string, error) {
	accel, source, err := cfg.Accel(s.pf.accel)
	if err != nil {
		if s.pf.accel != "" {
			return "", asUsage(err)
		}
		return "", err // PROVIUM_ACCEL: not a command-line mistake
	}
	if s.pf.noPreflight {
		return accel, nil
	}
	return accel, preflight(ctx, cfg, s.preflightInputs(accel, source))
}

// preflightInputs gathers the inputs of a run-mode preflight. An Env
// without PATH (an in-process invocation that sets no PATH) looks QEMU up in
// the process's PATH.
func (s *session) preflightInputs(accelValue, accelSource string) preflightInput {
	path, ok := s.env.lookup("PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	return preflightInput{path: path, accel: accelValue, accelSource: accelSource}
}

// preflight checks what a run needs before any file starts, in the order of
// 20-cli-config.md §5: QEMU on PATH, its version, KVM when explicitly
// requested, the scratch root, the cache directory. The first failure wins.
func preflight(ctx context.Context, cfg *config.Config, in preflightInput) error {
	if _, err := checkQEMU(ctx, in.path, in.versionTimeout); err != nil {
		return err
	}
	if in.accel == string(accel.KVM) {
		opts := in.probe
		if opts.CacheDir == "" {
			opts.CacheDir = cfg.ScratchDir()
		}
		_, err := accel.Resolve(ctx, in.accel, accelSourceText(in.accelSource, in.accel), opts)
		var ue *accel.UnusableError
		if errors.As(err, &ue) {
			return &preflightError{problem: ue.Error(), fix: ue.Fix()}
		} else if err != nil {
			return err
		}
	}
	var se *vmm.ScratchError
	if err := vmm.CheckScratchRoot(cfg.ScratchDir()); errors.As(err, &se) {
		return &preflightError{problem: se.Error(), fix: se.Fix()}
	} else if err != nil {
		return err
	}
	cache := cfg.CacheDir()
	if err := checkWritable(cache); err != nil {
		return &preflightError{
			problem: fmt.Sprintf("cache: `%s` is not writable: %v", cache, err),
			fix:     "set `[provium] cache_dir` or PROVIUM_CACHE_DIR to a writable directory",
		}
	}
	return nil
}

// accelSourceText renders where an accel request came from the way the
// user wrote it: `--accel kvm`, `PROVIUM_ACCEL=kvm`, `[provium] accel = "kvm"`.
func accelSourceText(source, value string) string {
	switch source {
	case config.AccelSourceFlag:
		return "--accel " + value
	case config.AccelSourceEnv:
		return config.AccelSourceEnv + "=" + value
	case config.AccelSourceConfig:
		return fmt.Sprintf("%s = %q", config.AccelSourceConfig, value)
	}
	return source
}

// qemuVersionRE finds the version in `QEMU emulator version 7.2.22 (…)`.
var qemuVersionRE = regexp.MustCompile(`version (\d+)\.(\d+)(?:\.(\d+))?`)

// checkQEMU finds qemu-system-x86_64 on path and checks that it answers
// --version in time with 7.2 or newer. It returns the binary's path.
func checkQEMU(ctx context.Context, path string, timeout time.Duration) (string, error) {
	bin, err := lookPathIn(vmm.DefaultQEMU, path)
	if err != nil {
		return "", &preflightError{
			problem: fmt.Sprintf("qemu: `%s` not found on PATH", vmm.DefaultQEMU),
			fix:     fixInstallQEMU,
		}
	}
	if timeout <= 0 {
		timeout = qemuVersionTimeout
	}
	out, err := runVersion(ctx, bin, timeout)
	if err != nil {
		return "", &preflightError{
			problem: fmt.Sprintf("qemu: %s --version failed: %v", bin, err),
			fix:     fixReinstallQEMU,
		}
	}
	m := qemuVersionRE.FindStringSubmatch(out)
	if m == nil {
		return "", &preflightError{
			problem: fmt.Sprintf("qemu: %s --version failed: unrecognised output %q", bin, firstLine(out)),
			fix:     fixReinstallQEMU,
		}
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < qemuMinMajor || (major == qemuMinMajor && minor < qemuMinMinor) {
		v := m[1] + "." + m[2]
		if m[3] != "" {
			v += "." + m[3]
		}
		return "", &preflightError{
			problem: fmt.Sprintf("qemu: version %s is older than %d.%d", v, qemuMinMajor, qemuMinMinor),
			fix:     fixUpgradeQEMU,
		}
	}
	return bin, nil
}

// runVersion runs `bin --version` and returns its stdout. The whole process
// group is killed when it does not answer within timeout, and descendants
// holding the pipe cannot keep us waiting.
func runVersion(ctx context.Context, bin string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		if msg := firstLine(stderr.String()); msg != "" {
			return "", fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return stdout.String(), nil
}

// lookPathIn is exec.LookPath against the given PATH value rather than the
// process's (the invocation's environment may differ from it in tests).
func lookPathIn(file, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			if abs, err := filepath.Abs(p); err == nil {
				return abs, nil
			}
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// checkWritable creates dir if needed and proves a file can be made in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return unwrapPath(err)
	}
	f, err := os.CreateTemp(dir, ".provium-probe-*")
	if err != nil {
		return unwrapPath(err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// unwrapPath drops the path an *os.PathError repeats; the message names
// the directory already.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
