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

// DiagnoseTimeout bounds one VM's diagnosis.
const DiagnoseTimeout = 10 * time.Second

// Diagnose collects what the guest was doing, at most limit bytes (the
// tail is kept): through the agent when it still answers (processes and
// the kernel's sysrq task dump), else the console tail with a note.
func (g *Machine) Diagnose(ctx context.Context, limit int) string {
	ctx, cancel := context.WithTimeout(ctx, DiagnoseTimeout)
	defer cancel()
	var sb strings.Builder
	ag, err := g.Agent()
	if err == nil {
		var res proto.ExecResult
		res, err = ag.Exec(ctx, proto.ExecReq{Cmd: diagnoseScript, Shell: true, TimeoutMs: (DiagnoseTimeout - time.Second).Milliseconds()})
		if err == nil {
			sb.Write(res.Stdout)
			sb.Write(res.Stderr)
		}
	}
	if err != nil {
		fmt.Fprintf(&sb, "(the agent did not answer: %v; last console lines follow)\n", err)
		for _, l := range g.vm.ConsoleTail(consoleTailLines) {
			sb.WriteString(l + "\n")
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
