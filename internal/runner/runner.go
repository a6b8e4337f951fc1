package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/luajson"
	"github.com/provium/provium/internal/report"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/sched"
)

// Messages the runner gives tests it stops (20-cli-config.md §4.2, 30 B7).
const (
	msgTestTimedOut    = "test timed out after %s"
	msgFileTimedOut    = "file timed out after %s"
	msgNotRunTimedOut  = "not run: file timed out"
	msgLabTornDown     = "lab torn down by timeout of test `%s`"
	msgInterrupted     = "interrupted"
	msgNotRunInterrupt = "not run: interrupted"
)

// fileRun is the state of one file's execution.
type fileRun struct {
	opts      *Options
	file      File
	res       *result.File
	chunkName string

	state *lua.State
	L     *lua.Thread
	api   *luaapi.API
	root  *lab.Lab

	tests  []*testDecl
	names  map[string]bool
	inTest bool
	todo   *string

	baseline    string // reset_between_tests snapshot dir (reset.go)
	resetFailed error

	fileTimedOut atomic.Bool
	interrupted  atomic.Bool

	curScope atomic.Pointer[lab.Lab] // the running test's scope (file watchdog)
	diagMu   sync.Mutex
	fileDiag []result.Console // the file watchdog's diagnosis

	// failure of the current protected call, recorded by the message handler
	lastSkip     *string
	lastLine     int
	handlerIndex int
}

// RunFile runs one test file and returns its outcome. A cancelled ctx (an
// interrupt of the whole run) stops the file as soon as possible; the
// outcome then reports what ran.
func RunFile(ctx context.Context, f File, opts *Options) (res *result.File) {
	res = &result.File{
		Path:         f.Display,
		RootRelative: f.RootRel,
		Canonical:    f.Canonical,
		Started:      time.Now(),
	}
	defer func() {
		if r := recover(); r != nil {
			res.Crashed = true
			res.HasChunkError = true
			res.ChunkError = fmt.Sprintf("runner crashed: %v\n%s", r, debug.Stack())
		}
		res.Duration = time.Since(res.Started)
	}()
	fr := &fileRun{opts: opts, file: f, res: res, names: map[string]bool{}, chunkName: f.Display}
	fr.run(ctx)
	return res
}

func (fr *fileRun) chunkError(msg string, line int) {
	fr.res.HasChunkError = true
	fr.res.ChunkError = msg
	fr.res.ChunkErrorLine = line
}

func (fr *fileRun) run(parent context.Context) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	st, err := lua.NewState()
	if err != nil {
		fr.res.Crashed = true
		fr.chunkError(err.Error(), 0)
		return
	}
	fr.state, fr.L = st, st.Main()
	defer st.Close()
	st.SetContext(ctx)

	// The watchdogs interrupt Lua (count hook) and cancel blocking Go calls.
	stopParent := context.AfterFunc(parent, func() {
		fr.interrupted.Store(true)
		st.Interrupt(msgInterrupted)
	})
	defer stopParent()
	if d := fr.opts.FileTimeout; d > 0 {
		msg := fmt.Sprintf(msgFileTimedOut, report.FormatDuration(d))
		// The clock started at dispatch; time parked extends it (B7).
		stop := startWatchdog(d, sched.FromContext(parent).Parked, func() {
			// Ask the VMs what they are doing before anything is cancelled.
			diag := luaapi.DiagnoseVMs(context.WithoutCancel(ctx), diagnosisBytes, fr.root, fr.curScope.Load())
			fr.diagMu.Lock()
			fr.fileDiag = diag
			fr.diagMu.Unlock()
			fr.fileTimedOut.Store(true)
			st.Interrupt(msg)
			cancel(fmt.Errorf("%s", msg))
		})
		defer stop()
	}

	endSetup := fr.span("setup")
	if err := fr.setup(); err != nil {
		endSetup()
		fr.res.Crashed = true
		fr.chunkError(err.Error(), 0)
		return
	}
	endSetup()
	defer fr.api.CloseSnapshots()
	defer func() {
		defer fr.span("teardown")()
		fr.keepFileVMs()
		fr.closeScope(fr.root)
	}()

	endTop := fr.span("top level")
	ok := fr.runChunk() && fr.takeBaseline()
	endTop()
	if !ok {
		return
	}
	fr.runTests(ctx)
}

// keepFileVMs hands the file-scope VMs of a failing file to
// Options.Keep (--keep-failed); not after a timeout or an interrupt.
func (fr *fileRun) keepFileVMs() {
	if fr.opts.Keep == nil || fr.fileTimedOut.Load() || fr.interrupted.Load() {
		return
	}
	_, failed, _ := fr.res.Counts()
	if failed == 0 && !fr.res.HasChunkError {
		return
	}
	if vms := fr.root.Scope().DetachRunningVMs(); len(vms) > 0 {
		fr.opts.Keep(fr.file, "", vms, fr.root.Scope().DetachBridges())
	}
}

// fileDiagnosis is the file watchdog's diagnosis (nil before it fired).
func (fr *fileRun) fileDiagnosis() []result.Console {
	fr.diagMu.Lock()
	defer fr.diagMu.Unlock()
	return fr.fileDiag
}

// span starts a trace span on the file's track; its end is returned.
func (fr *fileRun) span(name string) func() {
	if fr.opts.Trace == nil {
		return func() {}
	}
	return fr.opts.Trace.Begin(fr.file.Display, name)
}

// setup creates the root lab and the globals of a test file's top level.
func (fr *fileRun) setup() error {
	L := fr.L
	var profiles lab.Profiles = lab.StaticProfiles(nil)
	if cfg := fr.opts.Config; cfg != nil {
		profiles = cfg // declared profiles, and the implicit default image
	}
	env := lab.Env{Profiles: profiles, Seed: fr.opts.Seed, File: fr.file.Display}
	if cfg := fr.opts.Config; cfg != nil {
		env.GuestOS = cfg.NamedGuestOS
	}
	if fr.opts.Verbose && fr.opts.Diagnostics != nil {
		// -v: one line per VM lifecycle change (20-cli-config.md §4.2).
		var mu sync.Mutex
		env.Observe = func(vm *lab.VM, what string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(fr.opts.Diagnostics, "provium: [%s] vm %s: %s\n", fr.file.Display, vm.Path(), what)
		}
	}
	if fr.opts.Backend != nil {
		env.Backend = fr.opts.Backend(fr.file.Display)
	}
	fr.root = lab.NewRoot(env)
	api, err := luaapi.Install(L, fr.root)
	if err != nil {
		return err
	}
	if t := fr.opts.Trace; t != nil {
		file := fr.file.Display
		api.SetTracer(func(name string) func() { return t.Begin(file, name) })
	}
	fr.api = api
	api.SetFileName(fr.file.Display)
	fr.installFixtures()
	if err := fr.installFramework(); err != nil {
		return err
	}
	luajson.Open(L)
	fr.setSourcePath()
	if err := fr.setPackagePath(); err != nil {
		return err
	}
	L.PushFunction(fr.messageHandler)
	fr.handlerIndex = L.GetTop()
	return nil
}

// setSourcePath sets the global _PROVIUM_SOURCE_PATH to the file's
// absolute path with symlinks resolved, as upstream's runner does for test
// and fixture files alike: suites find tools relative to their checkout
// through it.
func (fr *fileRun) setSourcePath() {
	p := fr.file.Canonical
	if p == "" {
		p = fr.file.Abs
	}
	if p == "" {
		return
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		p = resolved
	}
	fr.L.PushString(p)
	fr.L.SetGlobal("_PROVIUM_SOURCE_PATH")
}

// setPackagePath prepends the effective roots to package.path so that
// require("helpers.x") finds <root>/helpers/x.lua.
func (fr *fileRun) setPackagePath() error {
	var parts []string
	for _, r := range fr.opts.Roots {
		parts = append(parts, filepath.Join(r, "?.lua"), filepath.Join(r, "?", "init.lua"))
	}
	if len(parts) == 0 {
		return nil
	}
	L := fr.L
	L.GetGlobal("package")
	L.RawGetField(-1, "path")
	old, _ := L.ToString(-1)
	L.Pop(1)
	L.PushString(strings.Join(parts, ";") + ";" + old)
	L.RawSetField(-2, "path")
	L.Pop(1)
	return nil
}

// messageHandler runs at the point of an error, before the stack unwinds:
// it recognises the skip sentinel and records the innermost line of the
// test file for annotations.
func (fr *fileRun) messageHandler(L *lua.Thread) (int, error) {
	fr.lastSkip, fr.lastLine = nil, 0
	if L.Type(1) == lua.TypeTable && L.GetMetatable(1) {
		L.RawGetField(-1, "__provium_skip")
		isSkip := L.ToBoolean(-1)
		L.Pop(2)
		if isSkip {
			L.RawGetField(1, "reason")
			reason, _ := L.ToStringMeta(-1)
			L.Pop(1)
			fr.lastSkip = &reason
		}
	}
	for _, f := range L.Stack() {
		if f.Source == fr.chunkName {
			fr.lastLine = f.Line
			break
		}
	}
	L.PushValue(1)
	return 1, nil
}

// pcall calls the function on top of the stack (with nargs arguments above
// it) through the message handler.
func (fr *fileRun) pcall(nargs int) error {
	return fr.L.PCallHandler(nargs, 0, fr.handlerIndex)
}

// runChunk loads and runs the top level; false if the file cannot go on.
func (fr *fileRun) runChunk() bool {
	src, err := readSource(fr.file.Abs)
	if err != nil {
		fr.chunkError(fmt.Sprintf("cannot read %s: %v", fr.file.Display, err), 0)
		return false
	}
	if err := fr.L.Load(src, "@"+fr.chunkName); err != nil {
		fr.chunkError(err.Error(), lineOf(err.Error(), fr.chunkName))
		return false
	}
	if err := fr.pcall(0); err != nil {
		switch {
		case fr.fileTimedOut.Load():
			fr.res.TimedOut = true
			fr.res.Timeout = fr.opts.FileTimeout
			fr.chunkError(err.Error()+diagnosisText(fr.fileDiagnosis()), 0)
		default:
			fr.chunkError(err.Error(), fr.lastLine)
		}
		return false
	}
	return true
}

// lineOf extracts the line of "<chunk>:<line>:" at the start of a message.
func lineOf(msg, chunk string) int {
	rest, ok := strings.CutPrefix(msg, chunk+":")
	if !ok {
		return 0
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// closeScope closes a lab's scope; failures are diagnostics, never outcomes.
func (fr *fileRun) closeScope(l *lab.Lab) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, err := range l.Scope().Close(ctx) {
		if fr.opts.Diagnostics != nil && fr.opts.Verbose {
			fmt.Fprintf(fr.opts.Diagnostics, "provium: [%s] close: %v\n", fr.file.Display, err)
		}
	}
}
