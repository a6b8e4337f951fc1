package runner

import (
	"context"
	"errors"
	"strings"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
)

// Interactive is a Lua state set up like a test file's top level, for the
// REPL: the full test API, evaluated line by line.
type Interactive struct {
	fr     *fileRun
	closed bool
}

// NewInteractive creates the state; name is how the session appears in
// messages (the REPL uses `repl`).
func NewInteractive(ctx context.Context, opts *Options, name string) (*Interactive, error) {
	fr := &fileRun{opts: opts, file: File{Display: name, RootRel: name}, names: map[string]bool{}, chunkName: name}
	st, err := lua.NewState()
	if err != nil {
		return nil, err
	}
	fr.state, fr.L = st, st.Main()
	st.SetContext(ctx)
	if err := fr.setup(); err != nil {
		st.Close()
		return nil, err
	}
	return &Interactive{fr: fr}, nil
}

// L is the session's Lua thread.
func (i *Interactive) L() *lua.Thread { return i.fr.L }

// Root is the session's root lab.
func (i *Interactive) Root() *lab.Lab { return i.fr.root }

// API is the session's Lua API.
func (i *Interactive) API() *luaapi.API { return i.fr.api }

// Interrupt stops the running Lua code (Ctrl-C while a line runs).
func (i *Interactive) Interrupt(msg string) { i.fr.state.Interrupt(msg) }

// ClearInterrupt re-arms the state after an interrupt.
func (i *Interactive) ClearInterrupt() { i.fr.state.ClearInterrupt() }

// ErrIncomplete means the chunk needs more lines (`...> `).
var ErrIncomplete = errors.New("incomplete chunk")

// Eval runs src: first as `return <src>` (an expression), else as
// statements. It returns the results rendered by Pretty (tables as nested
// key = value text, the rest as tostring), or
// ErrIncomplete when src ends inside an unfinished construct.
func (i *Interactive) Eval(src, chunk string) ([]string, error) {
	L := i.fr.L
	base := L.GetTop()
	defer L.SetTop(base)
	if err := L.Load("return "+src, "="+chunk); err != nil {
		if err := L.Load(src, "="+chunk); err != nil {
			if strings.HasSuffix(err.Error(), "<eof>") {
				return nil, ErrIncomplete
			}
			return nil, err
		}
	}
	if err := L.PCall(0, -1, false); err != nil {
		return nil, err
	}
	var out []string
	for k := base + 1; k <= L.GetTop(); k++ {
		out = append(out, Pretty(L, k))
	}
	return out, nil
}

// Close tears the session down: every VM and resource, temp snapshots, the
// Lua state. Idempotent.
func (i *Interactive) Close() {
	if i.closed {
		return
	}
	i.closed = true
	i.fr.closeScope(i.fr.root)
	_ = i.fr.api.CloseSnapshots()
	i.fr.state.Close()
}
