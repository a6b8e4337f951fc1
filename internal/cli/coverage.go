package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// --coverage texts (20-cli-config.md §3.7, 30-runtime.md C6).
const (
	coverageBinary      = "provium-coverage"
	errFmtCoverageNoBin = "provium-coverage not on PATH: %v"
	hintCoverageNoBin   = "  → `make build` puts it next to provium in bin/; add that directory to PATH"
	errFmtCoverageExit  = "provium-coverage exited with %s"
	envCoverageTmp      = "PROVIUM_COVERAGE_TMP"
	envCoverageUser     = "PROVIUM_COVERAGE_USER_FILE"
	envCoverageMarker   = "PROVIUM_COVERAGE_MARKER"
)

// coverageRun is the --coverage event file of a session.
type coverageRun struct {
	path   string // the event file provium-coverage reads
	marker string // "" when the file is the user's --save-events
}

// setupCoverage picks the event file: --save-events (kept), else a
// temporary with a marker naming our pid and it. Temporaries of dead
// provium processes (SIGKILL) are swept first.
func (s *session) setupCoverage() *coverageRun {
	if s.rf.saveEvents != "" {
		return &coverageRun{path: s.env.resolve(s.rf.saveEvents)}
	}
	dir := os.TempDir()
	if t := s.env.getenv("TMPDIR"); t != "" {
		dir = t
	}
	sweepCoverageTemps(dir)
	path := filepath.Join(dir, fmt.Sprintf("provium-coverage-%d.msgpack", os.Getpid()))
	marker := path + ".marker"
	_ = os.WriteFile(marker, []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), path)), 0o600)
	return &coverageRun{path: path, marker: marker}
}

// cleanup deletes the temporary and its marker, only if the marker names
// that file.
func (c *coverageRun) cleanup() {
	if c == nil || c.marker == "" {
		return
	}
	_, named, ok := readMarker(c.marker)
	if !ok || named != c.path {
		return
	}
	os.Remove(c.path)
	os.Remove(c.marker)
}

func readMarker(path string) (pid int, file string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		return 0, "", false
	}
	pid, err = strconv.Atoi(lines[0])
	if err != nil {
		return 0, "", false
	}
	return pid, lines[1], true
}

// sweepCoverageTemps removes temporaries whose marker's pid is dead.
func sweepCoverageTemps(dir string) {
	markers, _ := filepath.Glob(filepath.Join(dir, "provium-coverage-*.msgpack.marker"))
	for _, m := range markers {
		pid, file, ok := readMarker(m)
		if !ok || pid <= 0 || file != strings.TrimSuffix(m, ".marker") {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.Remove(file)
			os.Remove(m)
		}
	}
}

// lookCoverage finds provium-coverage on PATH, else next to this binary
// (make build puts both in bin/).
func (s *session) lookCoverage() (string, error) {
	path, ok := s.env.lookup("PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	bin, err := lookPathIn(coverageBinary, path)
	if err == nil {
		return bin, nil
	}
	if self, serr := os.Executable(); serr == nil {
		p := filepath.Join(filepath.Dir(self), coverageBinary)
		if st, serr := os.Stat(p); serr == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", err
}

// runCoverage runs provium-coverage --from <file> with our stdout; it
// returns false when the step failed (binary missing or non-zero exit).
func (s *session) runCoverage(ctx context.Context) bool {
	bin, err := s.lookCoverage()
	if err != nil {
		fmt.Fprintf(s.env.Stderr, exitPrefix+errFmtCoverageNoBin+"\n%s\n", err, hintCoverageNoBin)
		return false
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, "--from", s.cov.path)
	cmd.Stdout = s.env.Stdout
	cmd.Stderr = s.env.Stderr
	cmd.Env = append(os.Environ(), envCoverageTmp+"="+s.cov.path)
	if s.cov.marker == "" {
		cmd.Env = append(cmd.Env, envCoverageUser+"=1")
	} else {
		cmd.Env = append(cmd.Env, envCoverageMarker+"="+s.cov.marker)
	}
	if err := cmd.Run(); err != nil {
		status := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ProcessState.String()
		}
		fmt.Fprintf(s.env.Stderr, exitPrefix+errFmtCoverageExit+"\n", status)
		return false
	}
	return true
}
