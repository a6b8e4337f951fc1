package agentclient

import (
	"errors"
	"syscall"

	"github.com/provium/provium/internal/proto"
)

// Error is a failure reported by the agent. Errno is 0 when the failure is
// not a system error; then Name is empty and Message says what went wrong.
type Error struct {
	Errno   syscall.Errno
	Name    string
	Message string
}

func newError(e *proto.Error) *Error {
	return &Error{Errno: syscall.Errno(e.Errno), Name: e.Name, Message: e.Message}
}

// Error is `<strerror> (os error <N>, <ENAME>) (errno <N>)`, e.g. `No such
// file or directory (os error 2, ENOENT) (errno 2)`, ready to follow
// `vm:read_file("/x"): `.
func (e *Error) Error() string { return proto.ErrnoText(e.Message, int(e.Errno), e.Name) }

// Is lets errors.Is(err, syscall.ENOENT) and friends work.
func (e *Error) Is(target error) bool {
	errno, ok := target.(syscall.Errno)
	return ok && e.Errno != 0 && errno == e.Errno
}

func isClosed(err error) bool { return errors.Is(err, ErrClosed) }
