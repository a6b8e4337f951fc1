package vmm

import (
	"fmt"
	"os"
)

// ScratchRootMax bounds the scratch root's length so that every socket below
// it (<root>/run-<pid>/m<n>/console.sock and friends) fits sun_path.
const ScratchRootMax = 64

// ScratchError is a preflight failure of the scratch root; its text is the
// spec's (20-cli-config.md §5) and Fix the remedy for the `→` line.
type ScratchError struct {
	Dir string
	msg string
}

func (e *ScratchError) Error() string { return e.msg }

// Fix says how to choose another scratch directory.
func (e *ScratchError) Fix() string {
	return "set `[provium] scratch_dir` to a short, writable directory"
}

// CheckScratchRoot is the preflight check of the scratch root: short enough
// for unix sockets, creatable and writable.
func CheckScratchRoot(dir string) error {
	if n := len(dir); n > ScratchRootMax {
		return &ScratchError{dir, fmt.Sprintf("scratch: `%s` is too long for unix socket paths (%d > %d bytes)", dir, n, ScratchRootMax)}
	}
	notWritable := func(err error) error {
		return &ScratchError{dir, fmt.Sprintf("scratch: `%s` is not writable: %v", dir, err)}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return notWritable(err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return notWritable(err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
