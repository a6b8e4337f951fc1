package config

import "fmt"

// ErrorKind says which loading step failed.
type ErrorKind int

// Loading steps that can fail (20-cli-config.md §7.1).
const (
	ReadError ErrorKind = iota
	ParseError
	InvalidError
)

// Error texts of the loading steps.
const (
	errRead    = "read `%s`: %v"
	errParse   = "parse `%s`: %v"
	errInvalid = "invalid config in `%s`: %v"
)

// Error is a configuration failure. The CLI prints "provium: " + Error() and
// exits 2; errors.As(err, new(*config.Error)) tells it apart from others.
type Error struct {
	Kind ErrorKind
	Path string // the file the problem is in
	Err  error
}

func (e *Error) Error() string {
	switch e.Kind {
	case ReadError:
		return fmt.Sprintf(errRead, e.Path, e.Err)
	case ParseError:
		return fmt.Sprintf(errParse, e.Path, e.Err)
	default:
		return fmt.Sprintf(errInvalid, e.Path, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }
