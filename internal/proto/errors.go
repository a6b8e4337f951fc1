package proto

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Error is an operation failure as sent on the wire. Errno is 0 for failures
// that are not a system error (bad request, unknown op); Name is then empty.
type Error struct {
	Errno   int    `msgpack:"errno"`
	Name    string `msgpack:"name,omitempty"`
	Message string `msgpack:"message"`
}

// Error renders `<strerror> (os error <N>, <ENAME>) (errno <N>)`, the text
// the Lua layer appends after `<object>:<method>("<path>"): `.
func (e *Error) Error() string { return ErrnoText(e.Message, e.Errno, e.Name) }

// errnoFormat is how every OS error reads (see ErrnoText).
const errnoFormat = "%s (os error %d, %s) (errno %d)"

// ErrnoText is how every OS error reads: the C library's wording, then
// both forms upstream's harness shows, with our errno name added to the
// first, e.g. `Operation not supported (os error 95, ENOTSUP) (errno 95)`.
// Upstream renders an agent's OS error as Rust's io::Error text, which ends
// `(os error N)`, followed by `(errno N)`; suites written for it match
// either (`os error 95`, `errno (%d+)`). Without a name (not a system
// error) it is the message alone.
func ErrnoText(message string, errno int, name string) string {
	if name == "" {
		return message
	}
	return fmt.Sprintf(errnoFormat, message, errno, name, errno)
}

// ErrnoError builds the wire error for a system error number.
func ErrnoError(errno syscall.Errno) *Error {
	return &Error{Errno: int(errno), Name: unix.ErrnoName(errno), Message: Strerror(errno)}
}

// ErrorFrom converts any error to its wire form, keeping the errno when one
// is wrapped inside (os.PathError, os.SyscallError, exec errors …).
func ErrorFrom(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return ErrnoError(errno)
	}
	return &Error{Message: err.Error()}
}

// Strerror returns the C library wording of errno ("No such file or
// directory"). Go's table is glibc's with the first letter lowered, so
// raising it back gives the text users know from the shell.
func Strerror(errno syscall.Errno) string {
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
