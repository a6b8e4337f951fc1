package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/vmm"
)

// preflightError is a failed environment check: `provium: <subject>:
// <problem>` and `  → <fix>`, exit 2.
type preflightError struct {
	problem string // starts with the subject
	fix     string
}

func (e *preflightError) Error() string { return e.problem }

// preflight checks what a run needs before any file starts. The QEMU and
// accel checks arrive with the VM core; today it checks the scratch and
// cache directories (the scratch check is the VM core's own).
func preflight(cfg *config.Config) error {
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
