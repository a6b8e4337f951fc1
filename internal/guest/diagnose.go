package guest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/provium/provium/internal/proto"
)

// diagnoseScript asks the guest kernel what it is doing (sysrq `w`:
// blocked tasks, `l`: backtraces of all CPUs) and lists the processes with
// their state and command line. The kernel ring is cleared first so only
// the dump is read back; sysrq output goes to the ring whatever the
// console loglevel (`quiet`), so it is read with dmesg rather than from
// the serial console.
const diagnoseScript = `echo 1 > /proc/sys/kernel/sysrq 2>/dev/null
echo '--- processes (ps, without kernel threads and this probe) ---'
ps -o pid,stat,args 2>/dev/null | grep -v -e ' \[' -e sysrq-trigger
dmesg -c > /dev/null 2>&1
echo w > /proc/sysrq-trigger 2>/dev/null
echo l > /proc/sysrq-trigger 2>/dev/null
sleep 1
echo '--- kernel task dump (sysrq w, l) ---'
dmesg 2>/dev/null`

// DiagnoseTimeout bounds one VM's diagnosis through the agent, and again
// its diagnosis through the serial console when the agent did not answer.
const DiagnoseTimeout = 10 * time.Second

// Diagnose collects what the guest was doing, at most limit bytes (the
// tail is kept): through the agent when it still answers (processes and
// the kernel's sysrq task dump), else the kernel's task dump triggered
// over the serial console (serialSysrq), else the console tail with a note.
func (g *Machine) Diagnose(ctx context.Context, limit int) string {
	actx, cancel := context.WithTimeout(ctx, DiagnoseTimeout)
	defer cancel()
	var sb strings.Builder
	ag, err := g.Agent()
	if err == nil {
		var res proto.ExecResult
		res, err = ag.Exec(actx, proto.ExecReq{Cmd: diagnoseScript, Shell: true, TimeoutMs: (DiagnoseTimeout - time.Second).Milliseconds()})
		if err == nil {
			sb.Write(res.Stdout)
			sb.Write(res.Stderr)
		}
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(ctx, DiagnoseTimeout)
		defer cancel()
		dump, serr := g.serialSysrq(sctx)
		if serr == nil {
			fmt.Fprintf(&sb, "(the agent did not answer: %v; the kernel's task dump through the serial console follows)\n", err)
			sb.Write(dump)
		} else {
			fmt.Fprintf(&sb, "(the agent did not answer: %v; the serial sysrq dump failed: %v; last console lines follow)\n", err, serr)
			for _, l := range g.vm.ConsoleTail(consoleTailLines) {
				sb.WriteString(l + "\n")
			}
		}
	}
	out := strings.ToValidUTF8(sb.String(), "\uFFFD")
	if len(out) > limit {
		cut := len(out) - limit
		for cut < len(out) && out[cut]&0xC0 == 0x80 {
			cut++ // keep whole UTF-8 sequences
		}
		out = "…(earlier output cut)\n" + out[cut:]
	}
	return out
}

// serialSysrqSteps are the magic sysrq keys sent over the serial console,
// each with the header the kernel prints when it takes the key: raise the
// console loglevel first (sysrq raises it only for its own header, so under
// `quiet` the dumps would stay in the ring), then `w` and `l`.
var serialSysrqSteps = []struct{ key, header string }{
	{"9", "sysrq: Loglevel set to 9"},
	{"w", "sysrq: Show Blocked State"},
	{"l", "sysrq: Show backtrace of all active CPUs"},
}

// serialSysrqSettle is how long the last dump is given to reach the console.
const serialSysrqSettle = time.Second

// serialSysrq triggers the kernel's task dump with magic sysrq over the
// serial console (a BREAK, then the key) and returns what the console
// printed meanwhile. It needs no guest userspace, only the agent's boot-time
// kernel.sysrq=1 and ttyS0 being a kernel console. The console loglevel is
// put back to the cmdline's afterwards.
func (g *Machine) serialSysrq(ctx context.Context) ([]byte, error) {
	cmdline := g.vm.Config().KernelCmdline()
	if !serialIsConsole(cmdline) {
		return nil, fmt.Errorf("ttyS0 is not a kernel console (cmdline %q)", cmdline)
	}
	con := g.vm.Console()
	start := con.Offset()
	send := func(ctx context.Context, key string) error {
		if err := g.vm.SerialBreak(ctx); err != nil {
			return err
		}
		if _, err := con.Write([]byte(key)); err != nil {
			return fmt.Errorf("sysrq %s: %w", key, err)
		}
		return nil
	}
	off := start
	for i, st := range serialSysrqSteps {
		if err := send(ctx, st.key); err != nil {
			return nil, err
		}
		var err error
		if off, err = con.WaitFor(ctx, off, []byte(st.header)); err != nil {
			return nil, fmt.Errorf("sysrq %s (is kernel.sysrq=1 in the guest?): %w", st.key, err)
		}
		if i == 0 {
			// The loglevel is raised: put it back whatever happens next.
			defer func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				_ = send(rctx, bootLoglevel(cmdline))
			}()
		}
	}
	select {
	case <-time.After(serialSysrqSettle):
	case <-ctx.Done():
	}
	dump, _, err := con.ReadSince(ctx, start)
	if err != nil {
		return nil, fmt.Errorf("reading the sysrq dump: %w", err)
	}
	return dump, nil
}

// serialIsConsole reports whether ttyS0 is a kernel console for cmdline
// (KernelCmdline adds console=ttyS0 when it names none).
func serialIsConsole(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == "console=ttyS0" || strings.HasPrefix(f, "console=ttyS0,") {
			return true
		}
	}
	return false
}

// bootLoglevel is the sysrq key that restores the console loglevel the
// cmdline booted with: loglevel=N, else `quiet` (4), else the default (7).
func bootLoglevel(cmdline string) string {
	level := "7"
	for _, f := range strings.Fields(cmdline) {
		switch {
		case f == "quiet":
			level = "4"
		case strings.HasPrefix(f, "loglevel=") && len(f) == len("loglevel=")+1 && f[len(f)-1] >= '0' && f[len(f)-1] <= '9':
			level = f[len(f)-1:]
		}
	}
	return level
}
