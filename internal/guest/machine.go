package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/vmm"
)

// Machine is one running guest: its QEMU process and its agent session.
type Machine struct {
	vm           *vmm.Machine
	agentTimeout time.Duration
	onExit       func(poweroff bool)
	origin       *origin // what Snapshot records (snapshot.go)
	life         *life   // spawn/exit hooks (hooks.go)
	disks        *diskSet
	net          netState
	// workerExe reads the host's worker executor, which the agent gets
	// when the guest has none (agentclient.Client.SetWorkerExe).
	workerExe func(context.Context) ([]byte, error)

	mu    sync.Mutex
	agent *agentclient.Client

	redial sync.Mutex // one EnsureAgent reconnects at a time

	conMu sync.Mutex
	con   *consoleServer // vm:console_socket_path (consolesock.go), started on first use
	// charge is what the VM holds on the run's pool (nil without one),
	// returned once QEMU has exited (30-runtime.md B2).
	charge *sched.Hold

	rng      *rngFeed              // the virtio-rng stream (rngfeed.go)
	hwrngErr atomic.Pointer[error] // the last /dev/hwrng sync's failure

	stopping atomic.Bool // a stop was requested: the exit is not news
	exit     chan struct{}
	exitInfo vmm.Exit
}

func newMachine(vm *vmm.Machine, agentTimeout time.Duration, onExit func(bool)) *Machine {
	return &Machine{vm: vm, agentTimeout: agentTimeout, onExit: onExit, exit: make(chan struct{}), disks: &diskSet{dir: vm.Config().Scratch}}
}

// VMM returns the QEMU machine.
func (g *Machine) VMM() *vmm.Machine { return g.vm }

// Console returns the serial console capture.
func (g *Machine) Console() *vmm.Console { return g.vm.Console() }

// Agent returns the current agent session, or an error when there is none
// (the guest is rebooting or gone).
func (g *Machine) Agent() (*agentclient.Client, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.agent == nil {
		return nil, errors.New("the agent is not connected")
	}
	return g.agent, nil
}

// resetHook routes vmm's guest-reset callback (set in the vmm.Config before
// vmm.Start) to the Machine made after Start returned.
type resetHook struct{ m atomic.Pointer[Machine] }

func (h *resetHook) fire(reason string) {
	if g := h.m.Load(); g != nil {
		g.guestRebooted(reason)
	}
}

// guestRebooted ends the agent session of a guest that rebooted itself
// (10-lua-api.md §5.1: the VM stays booted, handles go stale). No byte
// would ever tell the host that the old agent is gone, so a call in flight
// would wait forever; closing the session fails it at once, and the next
// operation reconnects to the new agent (EnsureAgent). It runs on vmm's
// event goroutine and must not block.
func (g *Machine) guestRebooted(string) {
	g.mu.Lock()
	ag := g.agent
	g.mu.Unlock()
	if ag != nil {
		go ag.Close()
	}
}

// EnsureAgent returns the agent session, first reconnecting when the
// current one ended while the guest still runs: the agent server died and
// its successor announced itself (proto.RestartBurstLen), or the guest
// rebooted itself (guestRebooted). The operation that was in flight
// failed; the next one gets a fresh session.
func (g *Machine) EnsureAgent(ctx context.Context) (*agentclient.Client, error) {
	g.redial.Lock()
	defer g.redial.Unlock()
	ag, err := g.Agent()
	if err != nil {
		return nil, err
	}
	select {
	case <-ag.Done():
	default:
		return ag, nil
	}
	select {
	case <-g.vm.Done():
		return nil, fmt.Errorf("QEMU exited (%s)", g.vm.Wait())
	default:
	}
	if err := g.reconnect(ctx); err != nil {
		return nil, fmt.Errorf("the agent session ended and reconnecting failed: %w", err)
	}
	return g.Agent()
}

// connect waits for the agent's Hello for at most agentTimeout. The dial
// runs in its own goroutine; on timeout or QEMU exit its connection is
// closed, which unblocks it whatever it was waiting for.
func (g *Machine) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.agentTimeout)
	defer cancel()
	type dialed struct {
		c   *agentclient.Client
		err error
	}
	ch := make(chan dialed, 1)
	var connMu sync.Mutex
	var conn net.Conn
	abandon := func() {
		cancel()
		connMu.Lock()
		if conn != nil {
			conn.Close()
		}
		connMu.Unlock()
		if d := <-ch; d.c != nil {
			d.c.Close()
		}
	}
	go func() {
		c, err := g.vm.AgentConn(ctx)
		if err != nil {
			ch <- dialed{nil, err}
			return
		}
		connMu.Lock()
		conn = c
		connMu.Unlock()
		client, err := agentclient.Dial(ctx, c)
		ch <- dialed{client, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			// A guest that halts breaks the agent channel before QEMU
			// is reaped (longer on a loaded host): say it exited.
			select {
			case <-g.vm.Done():
				return fmt.Errorf("QEMU exited before the agent answered (%s)", g.vm.Wait())
			case <-time.After(agentErrExitWait):
			}
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("agent did not answer within %s", g.agentTimeout)
			}
			return fmt.Errorf("agent: %w", d.err)
		}
		if g.workerExe != nil {
			d.c.SetWorkerExe(g.workerExe)
		}
		g.mu.Lock()
		g.agent = d.c
		g.mu.Unlock()
		return nil
	case <-g.vm.Done():
		abandon()
		return fmt.Errorf("QEMU exited before the agent answered (%s)", g.vm.Wait())
	case <-ctx.Done():
		abandon()
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("agent did not answer within %s", g.agentTimeout)
		}
		return ctx.Err()
	}
}

// failureDetail is the console and QEMU stderr tail for boot errors: the
// last bootFailureTailLines lines within bootFailureTailBytes. After QEMU
// exited it first waits (briefly) for the console's last bytes, which a
// halting guest printed last.
func (g *Machine) failureDetail() string {
	con := g.vm.Console()
	select {
	case <-g.vm.Done():
		select {
		case <-con.Done():
		case <-time.After(consoleDrainWait):
		}
	default:
	}
	var sb strings.Builder
	if lines := con.TailWithin(bootFailureTailLines, bootFailureTailBytes); len(lines) > 0 {
		sb.WriteString("\n--- last console lines ---\n")
		sb.WriteString(indent(lines, ""))
	} else {
		sb.WriteString("\n(the console is empty)\n")
	}
	if s := strings.TrimSpace(g.vm.StderrTail()); s != "" {
		sb.WriteString("--- qemu stderr ---\n" + s + "\n")
	}
	return strings.TrimRight(sb.String(), "\n")
}

// serveRNG feeds the guest's virtio-rng from g.rng.
func (g *Machine) serveRNG() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-g.vm.Done():
		case <-g.exit:
		}
		cancel()
	}()
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", g.vm.Config().RNGSocket())
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		return
	}
	defer conn.Close()
	_ = vmm.ServeEGD(ctx, conn, g.rng)
}

// watch reports an exit nobody asked for to the core.
func (g *Machine) watch() {
	exit := g.vm.Wait()
	g.disks.closeAll()
	g.net.closeParked()
	g.charge.Release()
	g.exitInfo = exit
	close(g.exit)
	g.closeAgent()
	if g.stopping.Load() {
		g.life.exit()
		return
	}
	_ = g.vm.Quit(context.Background()) // reap and remove the scratch dir
	g.life.exit()
	if g.onExit != nil {
		// A guest reboot that stopped the machine (a profile without
		// guest_os, as upstream's -no-reboot) ends it like a poweroff.
		g.onExit(exit.Kind == vmm.ExitGuestPoweroff || exit.Kind == vmm.ExitGuestReboot)
	}
}

func (g *Machine) closeAgent() {
	g.mu.Lock()
	a := g.agent
	g.agent = nil
	g.mu.Unlock()
	if a != nil {
		a.Close()
	}
}

// ErrTextGuestRebootStopped is how a VM's errors say that its guest
// rebooted itself and that this ended the VM.
const ErrTextGuestRebootStopped = "the guest rebooted itself, which shuts down a VM whose profile does not name guest_os (as upstream's -no-reboot)"

// StoppedByGuestReboot reports whether the machine ended because its guest
// rebooted itself (vmm.Config.GuestRebootStops).
func (g *Machine) StoppedByGuestReboot() bool {
	select {
	case <-g.exit:
		return g.exitInfo.Kind == vmm.ExitGuestReboot
	default:
		return false
	}
}

// ExitDetail describes how the machine ended, with the console tail: what
// an operation on a dead VM reports. Empty while it runs.
func (g *Machine) ExitDetail() string {
	select {
	case <-g.exit:
	default:
		return ""
	}
	what := "QEMU exited (" + g.exitInfo.String() + ")"
	switch g.exitInfo.Kind {
	case vmm.ExitGuestPanic:
		what = "guest kernel panicked (" + g.exitInfo.String() + ")"
	case vmm.ExitGuestReboot:
		what = ErrTextGuestRebootStopped + " (" + g.exitInfo.String() + ")"
	}
	tail := g.vm.Console().Tail(consoleTailLines)
	if len(tail) == 0 {
		return what
	}
	return what + "\n--- last console lines ---\n" + strings.TrimRight(indent(tail, ""), "\n")
}

// Stop ends QEMU without the guest's help and cleans up.
func (g *Machine) Stop(ctx context.Context) error {
	g.stopping.Store(true)
	g.closeAgent()
	err := g.vm.Quit(ctx)
	g.disks.closeAll() // QEMU is gone: nobody reads the exports any more
	g.net.closeParked()
	select {
	case <-g.vm.Done():
		g.charge.Release()
		g.life.exit()
	default:
	}
	return err
}

// Pause stops the vCPUs.
func (g *Machine) Pause(ctx context.Context) error { return g.vm.Pause(ctx) }

// Resume continues the vCPUs.
func (g *Machine) Resume(ctx context.Context) error { return g.vm.Resume(ctx) }

// Reset is a hardware reset of the same QEMU; it returns once the agent of
// the new boot answers. On a machine whose guest reboots stop it, they do
// so again from then on (vmm.ResetDone).
func (g *Machine) Reset(ctx context.Context) error {
	g.closeAgent()
	g.rng.boot()
	if err := g.vm.SystemReset(ctx); err != nil {
		return err
	}
	if err := g.connect(ctx); err != nil {
		_ = g.vm.ResetDone(context.WithoutCancel(ctx))
		return fmt.Errorf("%w%s", err, g.failureDetail())
	}
	if err := g.vm.ResetDone(ctx); err != nil {
		return err
	}
	g.syncHWRNG(ctx)
	return nil
}

// PowerButton presses the ACPI power button and returns at once; a guest
// that powers off on it ends QEMU, which watch reports like any poweroff.
func (g *Machine) PowerButton(ctx context.Context) error { return g.vm.PowerButton(ctx) }

// ErrNotSuspended is Wakeup's error when the guest is not suspended.
var ErrNotSuspended = errors.New("is not suspended")

// IsSuspended reports whether the guest is suspended to RAM (S3): QEMU's
// run state is then `suspended`.
func (g *Machine) IsSuspended(ctx context.Context) (bool, error) {
	raw, err := g.vm.Execute(ctx, "query-status", nil)
	if err != nil {
		return false, fmt.Errorf("query-status: %w", err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return false, fmt.Errorf("query-status: %w", err)
	}
	return st.Status == "suspended", nil
}

// Wakeup resumes a guest suspended to RAM (S3) through the hypervisor; it
// returns ErrNotSuspended when the guest is running.
func (g *Machine) Wakeup(ctx context.Context) error {
	suspended, err := g.IsSuspended(ctx)
	if err != nil {
		return err
	}
	if !suspended {
		return ErrNotSuspended
	}
	if _, err := g.vm.Execute(ctx, "system_wakeup", nil); err != nil {
		return fmt.Errorf("system_wakeup: %w", err)
	}
	return nil
}
