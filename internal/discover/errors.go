package discover

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Texts of the bad-PATH errors (20-cli-config.md §2). The CLI prefixes them
// with "provium: " and exits 2.
const (
	msgNoSuchFile  = "`%s`: no such file or directory"
	msgNotTestFile = "`%s` is not a *.test.lua file"
	msgStatFailed  = "`%s`: %v"
)

// Texts of the warnings raised for unusable configured roots; the CLI
// prefixes them with "provium: warning: ".
const (
	msgRootMissing   = "root `%s` does not exist; skipping it"
	msgRootNotDir    = "root `%s` is not a directory; skipping it"
	msgRootStatError = "root `%s`: %v; skipping it"
)

// PathProblem says why a PATH argument was rejected.
type PathProblem int

const (
	// PathMissing: the path does not exist.
	PathMissing PathProblem = iota + 1
	// PathNotTestFile: the path exists but is neither a directory nor a
	// *.test.lua regular file.
	PathNotTestFile
	// PathUnreadable: stat failed for another reason (see Err).
	PathUnreadable
)

// PathError is returned by Discover when a PATH argument cannot be scanned.
// It is a usage error: the CLI prints "provium: " + Error() and exits 2.
type PathError struct {
	Path    string // as the user wrote it
	Problem PathProblem
	Err     error // underlying cause for PathUnreadable, else nil
}

func (e *PathError) Error() string {
	switch e.Problem {
	case PathMissing:
		return fmt.Sprintf(msgNoSuchFile, e.Path)
	case PathNotTestFile:
		return fmt.Sprintf(msgNotTestFile, e.Path)
	default:
		return fmt.Sprintf(msgStatFailed, e.Path, e.Err)
	}
}

func (e *PathError) Unwrap() error { return e.Err }

// isMissing reports whether a stat error means "nothing there", including a
// path that runs through a regular file (ENOTDIR).
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// causeOf strips the *fs.PathError wrapper so messages that already name the
// path do not name it twice.
func causeOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
