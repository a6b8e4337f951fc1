package luaapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/vmm"
)

const (
	classConsoleStream  = "ConsoleStream"
	kindConsoleRead     = "console_read"
	errConsoleClosed    = "console closed"
	consoleChunkMax     = 64 << 10
	errFmtConsoleStart  = "console:read: opts.start = `%s` (expected \"beginning\"|\"end\")"
	errFmtConsoleNoBoot = "console:read: vm `%s` has no console (it never booted)"
)

// consoleSource reads a console capture from a history offset. It belongs to
// one QEMU process: a reset keeps it, the process's exit ends it.
type consoleSource struct {
	con *vmm.Console
	off int64 // next history offset to read; only the Lua thread reads

	life context.Context // cancelled by close
	stop context.CancelFunc
}

func newConsoleSource(con *vmm.Console, off int64) *consoleSource {
	life, stop := context.WithCancel(context.Background())
	return &consoleSource{con: con, off: off, life: life, stop: stop}
}

func (c *consoleSource) read(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()
	data, next, err := c.con.ReadSince(ctx, c.off)
	if err != nil {
		if errors.Is(err, vmm.ErrConsoleClosed) {
			return nil, fmt.Errorf("console: %w", errEOFConsole)
		}
		return nil, err
	}
	if len(data) > consoleChunkMax {
		c.off = next - int64(len(data)) + consoleChunkMax
		return data[:consoleChunkMax], nil
	}
	c.off = next
	return data, nil
}

// poll reads with a context that is already done: ReadSince returns what
// is there before it would wait.
func (c *consoleSource) poll(ctx context.Context) ([]byte, error) {
	done, cancel := context.WithCancel(ctx)
	cancel()
	b, err := c.read(done)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return nil, errTimedOut
	}
	return b, err
}

func (c *consoleSource) live() bool { return true }

// exhausted reports that the console ended (QEMU exited) and every byte
// was read: the stream has nothing left even before a read reports EOF.
func (c *consoleSource) exhausted() bool {
	if c.con.Offset() > c.off {
		return false
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.con.ReadSince(done, c.off)
	return errors.Is(err, vmm.ErrConsoleClosed)
}

func (c *consoleSource) close() { c.stop() }

// errEOFConsole marks the console's end (QEMU exited); readFrame treats any
// non-timeout error as the end.
var errEOFConsole = errors.New("ended")

// consoleRead is console:read(opts?).
func (a *API) consoleRead(L *lua.Thread, c *consoleObj) (int, error) {
	beginning := false
	if L.Type(2) == lua.TypeTable {
		switch L.RawGetField(2, "start") {
		case lua.TypeNil:
		case lua.TypeString:
			v, _ := L.ToString(-1)
			switch v {
			case "end":
			case "beginning":
				beginning = true
			default:
				L.Pop(1)
				return 0, fmt.Errorf(errFmtConsoleStart, v)
			}
		default:
			v, _ := L.ToStringMeta(-1)
			L.Pop(1)
			return 0, fmt.Errorf(errFmtConsoleStart, v)
		}
		L.Pop(1)
	} else if !L.IsNoneOrNil(2) {
		return 0, fmt.Errorf("console:read: opts must be a table, got %s", L.TypeName(2))
	}
	con := c.console()
	if con == nil {
		return 0, fmt.Errorf(errFmtConsoleNoBoot, c.vm.Name())
	}
	var off int64 // 0 = the oldest retained byte
	if !beginning {
		off = con.Offset()
	}
	a.newStream(L, &streamObj{
		vm:        c.vm,
		class:     classConsoleStream,
		prefix:    "console_stream",
		closedMsg: errConsoleClosed,
		kind:      kindConsoleRead,
		detail:    "vm=" + c.vm.Name(),
		src:       newConsoleSource(con, off),
	})
	return 1, nil
}
