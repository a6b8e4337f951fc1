package cli

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes (20-cli-config.md §5). Never a count.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// Texts every command shares.
const (
	exitPrefix  = "provium: "
	usageHint   = "Run 'provium --help' for usage."
	msgConflict = "--quiet cannot be used with --verbose"
	msgNoLocal  = "the local backend is not provided: Provium runs guests under TCG when KVM is missing (see provium doctor)"
)

// usageError is a mistake in the command line: printed with the usage hint,
// exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// exitCode ends the command with a code after everything was printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// codeOf prints err (unless it is a bare exit code) and returns the exit
// code it stands for. Plain errors are configuration, I/O or internal
// problems: exit 2.
func codeOf(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintf(stderr, "%s%v\n", exitPrefix, err)
	var pe *preflightError
	if errors.As(err, &pe) {
		fmt.Fprintf(stderr, "  → %s\n", pe.fix)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, usageHint)
	}
	return ExitUsage
}
