package vmm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const runDirPrefix = "run-"

// DefaultScratchRoot is /tmp/provium-<uid>: short, so socket paths below it
// stay far from the 107-byte limit, and per user, so users do not collide.
func DefaultScratchRoot() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("provium-%d", os.Getuid()))
}

// RunDir is the scratch directory of one Provium process, <root>/run-<pid>.
// Each machine gets a short subdirectory of it. Remove it at exit; a crashed
// run's leftovers are removed by the next run's SweepDeadRuns.
type RunDir struct {
	Path string
	next atomic.Uint64
}

// NewRunDir creates <root>/run-<pid>.
func NewRunDir(root string) (*RunDir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("vmm: creating scratch root: %w", err)
	}
	p := filepath.Join(root, runDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("vmm: creating run dir: %w", err)
	}
	return &RunDir{Path: p}, nil
}

// NewMachineDir returns a fresh, not yet created, path for one machine's
// scratch (Start creates it, Quit removes it). Names are counters, not VM
// names, to keep socket paths short whatever the user calls a VM.
func (r *RunDir) NewMachineDir() string {
	return filepath.Join(r.Path, "m"+strconv.FormatUint(r.next.Add(1), 10))
}

// Remove deletes the run dir and everything in it.
func (r *RunDir) Remove() error {
	if err := os.RemoveAll(r.Path); err != nil {
		return fmt.Errorf("vmm: removing run dir: %w", err)
	}
	return nil
}

// SweepDeadRuns removes the run-<pid> directories under root whose process no
// longer exists (a Provium that was killed), and returns what it removed.
func SweepDeadRuns(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vmm: sweeping %s: %w", root, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pidText, ok := strings.CutPrefix(e.Name(), runDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := filepath.Join(root, e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("vmm: sweeping %s: %w", root, errors.Join(errs...))
	}
	return removed, nil
}

// processAlive treats EPERM as alive: the pid exists, owned by someone else.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
