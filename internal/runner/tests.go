package runner

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/report"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/sched"
)

func readSource(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// runTests runs the registered tests in declaration order.
func (fr *fileRun) runTests(ctx context.Context) {
	tornDownBy := ""
	for i, decl := range fr.tests {
		tr := result.Test{Name: decl.name, Meta: decl.meta, DeclLine: decl.declLine}
		skip, reason := false, ""
		if fr.todo != nil {
			skip, reason = true, *fr.todo
		} else {
			skip, reason = fr.opts.Filter.Decide(decl.meta)
		}
		ran := false
		switch {
		case fr.fileTimedOut.Load():
			tr.Status, tr.Message = result.Failed, msgNotRunTimedOut
		case fr.interrupted.Load():
			tr.Status, tr.Message = result.Failed, msgNotRunInterrupt
		case skip:
			tr.Status, tr.Message = result.Skipped, reason
		case fr.resetFailed != nil:
			tr.Status, tr.Message = result.Failed, fmt.Sprintf(msgResetFailed, fr.resetFailed)
		case tornDownBy != "":
			tr.Status, tr.Message = result.Failed, fmt.Sprintf(msgLabTornDown, tornDownBy)
		default:
			ran = true
			fr.emit(events.TestStarted{Path: fr.file.RootRel, Name: decl.name, Meta: decl.meta})
			endSpan := fr.span("test " + decl.name)
			timedOut := fr.runTest(ctx, i+1, decl, &tr)
			if timedOut {
				// A test watchdog tears the whole file lab down (30 B7).
				fr.closeScope(fr.root)
				tornDownBy = decl.name
			}
			tornDownBy = fr.afterTest(i, timedOut, tornDownBy)
			endSpan()
		}
		fr.emitOutcome(&tr, ran)
		fr.res.Tests = append(fr.res.Tests, tr)
	}
}

// runTest runs one test body and fills in tr; it reports whether the test's
// own watchdog fired.
func (fr *fileRun) runTest(ctx context.Context, index int, decl *testDecl, tr *result.Test) (testTimedOut bool) {
	L, st := fr.L, fr.state
	start := time.Now()
	defer func() { tr.Duration = time.Since(start) }()

	timeout := fr.api.File.Timeout
	if decl.timeout.set {
		timeout = decl.timeout.d.(time.Duration)
	}
	testCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st.SetContext(testCtx)
	defer st.SetContext(ctx)

	var fired atomic.Bool // the test watchdog fired
	scope := fr.root.NewTestScope()
	fr.api.Bind(scope)
	fr.curScope.Store(scope)
	defer func() {
		fr.curScope.Store(nil)
		if fr.opts.Keep != nil && tr.Status == result.Failed && !fired.Load() && !fr.fileTimedOut.Load() && !fr.interrupted.Load() {
			if vms := scope.Scope().DetachRunningVMs(); len(vms) > 0 {
				fr.opts.Keep(fr.file, tr.Name, vms, scope.Scope().DetachBridges())
			}
		}
		fr.closeScope(scope)
		fr.api.Bind(fr.root)
	}()

	// The watchdog first asks the test's VMs what they are doing (the
	// hanging command is still there), then interrupts. Once the body
	// has returned it does nothing: a late firing must not interrupt the
	// next test.
	var (
		timeoutMsg string
		watchMu    sync.Mutex
		bodyDone   bool
		diag       []result.Console
	)
	if timeout > 0 {
		timeoutMsg = fmt.Sprintf(msgTestTimedOut, report.FormatDuration(timeout))
		stop := startWatchdog(timeout, sched.FromContext(ctx).Parked, func() {
			watchMu.Lock()
			defer watchMu.Unlock()
			if bodyDone {
				return
			}
			fired.Store(true)
			diag = luaapi.DiagnoseVMs(context.WithoutCancel(testCtx), diagnosisBytes, fr.root, scope)
			st.Interrupt(timeoutMsg)
			cancel(fmt.Errorf("%s", timeoutMsg))
		})
		defer stop()
	}
	// Runs before the scope closes: a failed test carries the console
	// tails of the VMs that ran (10-lua-api.md §2.5).
	defer func() {
		if tr.Status == result.Failed {
			tr.Consoles = fr.api.ConsoleTails(consoleTailBytes, fr.root, scope)
		}
	}()

	base := L.GetTop()
	defer L.SetTop(base)
	// t = prelude.new_context(name, meta)
	L.GetRegistryField(regPrelude)
	prel := L.GetTop()
	L.RawGetField(prel, "new_context")
	L.PushString(decl.name)
	if decl.meta != nil {
		luaapi.PushGo(L, decl.meta)
	} else {
		L.NewTable(0, 0)
	}
	if err := L.PCall(2, 1, false); err != nil {
		tr.Status, tr.Message = result.Failed, "runner: "+err.Error()
		return false
	}
	tIdx := L.GetTop()

	L.GetRegistryField(regTests)
	L.RawGetI(-1, int64(index))
	L.Remove(-2)
	L.PushValue(tIdx)
	fr.inTest = true
	err := fr.pcall(1)
	fr.inTest = false
	watchMu.Lock()
	bodyDone = true
	watchMu.Unlock()
	skipReason, errLine := fr.lastSkip, fr.lastLine
	if timeout > 0 && !fr.fileTimedOut.Load() && !fr.interrupted.Load() {
		st.ClearInterrupt()
	}

	failed, message, logs := fr.contextState(prel, tIdx)
	tr.Log = logs
	switch {
	case fr.fileTimedOut.Load():
		fd := fr.fileDiagnosis()
		tr.Status, tr.Message = result.Failed, fmt.Sprintf(msgFileTimedOut, report.FormatDuration(fr.opts.FileTimeout))+diagnosisText(fd)
		tr.Diagnosis = fd
		fr.res.TimedOut = true
		fr.res.Timeout = fr.opts.FileTimeout
	case fired.Load():
		tr.Status, tr.Message = result.Failed, timeoutMsg+diagnosisText(diag)
		tr.Diagnosis = diag
		return true
	case fr.interrupted.Load():
		tr.Status, tr.Message = result.Failed, msgInterrupted
	case err != nil && skipReason != nil:
		if failed {
			tr.Status, tr.Message = result.Failed, message
		} else {
			tr.Status, tr.Message = result.Skipped, *skipReason
		}
	case err != nil:
		tr.Status, tr.Message, tr.Line = result.Failed, err.Error(), errLine
	case failed:
		tr.Status, tr.Message = result.Failed, message
	default:
		tr.Status = result.Passed
	}
	return false
}

// consoleTailBytes is how much of each VM's console a failed test carries.
const consoleTailBytes = 4 << 10

// diagnosisBytes bounds what a timeout's diagnosis keeps of each VM.
const diagnosisBytes = 8 << 10

// diagnosisText renders a timeout's diagnosis for the failure message.
func diagnosisText(diag []result.Console) string {
	var sb strings.Builder
	for _, d := range diag {
		sb.WriteString("\n--- " + d.VM + " ---\n")
		sb.WriteString(strings.TrimRight(d.Tail, "\n"))
	}
	return sb.String()
}

// contextState reads the sticky failure and the log of a test context.
func (fr *fileRun) contextState(prel, tIdx int) (failed bool, message string, logs []string) {
	L := fr.L
	L.RawGetField(prel, "state_of")
	L.PushValue(tIdx)
	if err := L.PCall(1, 3, false); err != nil {
		return false, "", nil
	}
	failed = L.ToBoolean(-3)
	message, _ = L.ToStringMeta(-2)
	for k := int64(1); L.RawGetI(-1, k) != lua.TypeNil; k++ {
		s, _ := L.ToString(-1)
		logs = append(logs, s)
		L.Pop(1)
	}
	L.Pop(4)
	return failed, message, logs
}

// emit sends one event when the run has a stream.
func (fr *fileRun) emit(p events.Payload) {
	fr.opts.Events.Emit(p)
}

// emitOutcome sends a test's outcome (30-runtime.md C4): passed and failed
// always follow a test_started (a cascade failure that never ran gets one
// first); a skip follows it only when the body ran.
func (fr *fileRun) emitOutcome(tr *result.Test, ran bool) {
	if !fr.opts.Events.Active() {
		return
	}
	path := fr.file.RootRel
	meta := events.Meta(tr.Meta)
	if !ran && tr.Status != result.Skipped {
		fr.emit(events.TestStarted{Path: path, Name: tr.Name, Meta: meta})
	}
	d := uint64(max(tr.Duration, 0))
	switch tr.Status {
	case result.Passed:
		fr.emit(events.TestPassed{Path: path, Name: tr.Name, DurationNs: d, Meta: meta})
	case result.Skipped:
		fr.emit(events.TestSkipped{Path: path, Name: tr.Name, Reason: tr.Message, Meta: meta})
	default:
		fr.emit(events.TestFailed{Path: path, Name: tr.Name, DurationNs: d, Reason: tr.Message,
			ConsoleExcerpt: ConsoleExcerpt(append(append([]result.Console(nil), tr.Consoles...), tr.Diagnosis...)), Meta: meta})
	}
}

// ConsoleExcerpt renders the console tails of a failed test as
// test_failed.console_excerpt: per VM, in boot order, a line
// `--- console <vm> ---` and its tail; invalid UTF-8 becomes U+FFFD.
func ConsoleExcerpt(cs []result.Console) string {
	var sb strings.Builder
	for _, c := range cs {
		sb.WriteString("--- console " + c.VM + " ---\n")
		sb.WriteString(strings.ToValidUTF8(c.Tail, "\uFFFD"))
		if c.Tail != "" && !strings.HasSuffix(c.Tail, "\n") {
			sb.WriteString("\n")
		}
	}
	return sb.String()
}
