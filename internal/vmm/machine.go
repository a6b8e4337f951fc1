package vmm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	socketPoll    = 20 * time.Millisecond
	quitGrace     = 2 * time.Second
	drainTimeout  = 2 * time.Second // for QMP's EOF after QEMU died
	stderrTailMax = 4 << 10
	panicMarker   = "Kernel panic - not syncing"
)

// Machine is one running QEMU process. Every Machine must end with Quit, also
// after it stopped on its own: Quit releases the connections and removes the
// scratch directory.
type Machine struct {
	cfg     Config
	cmd     *exec.Cmd
	qmp     *QMP
	console *Console

	exited     chan struct{} // closed by the reaper once the process is reaped
	eventsDone chan struct{} // closed when QMP events were all handled
	done       chan struct{} // closed once exit is final
	exit       Exit
	stderrTail string // captured at exit, before Quit removes the file

	mu         sync.Mutex
	devs       devices
	facts      exitFacts
	logOffset  int64 // console.log size at the start of the current boot
	quitOnce   sync.Once
	quitResult error
}

// Start boots a machine: it launches QEMU (paused), connects QMP and the
// console, then lets the vCPUs run — unless cfg.Incoming, where the caller
// feeds the migration stream and calls Resume.
func Start(ctx context.Context, cfg Config) (*Machine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Scratch, 0o700); err != nil {
		return nil, fmt.Errorf("vmm: creating scratch dir: %w", err)
	}
	// Sockets of an earlier machine in the same dir would fool the wait below.
	for _, p := range []string{cfg.QMPSocket(), cfg.ConsoleSocket(), cfg.AgentSocket(), cfg.RNGSocket()} {
		os.Remove(p)
	}
	stderr, err := os.Create(cfg.StderrFile())
	if err != nil {
		return nil, fmt.Errorf("vmm: creating stderr file: %w", err)
	}
	argv := cfg.Argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr // stdin and stdout stay nil: /dev/null
	// Own process group: a Ctrl-C aimed at Provium does not reach QEMU
	// behind our back. Pdeathsig: if Provium dies, QEMU dies with it. (It
	// fires when the starting OS thread exits, so Start must not run on a
	// thread that exits while QEMU is alive — e.g. a LockOSThread'd
	// goroutine that returns without unlocking.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	stderr.Close()
	if err != nil {
		os.RemoveAll(cfg.Scratch)
		return nil, fmt.Errorf("vmm: starting %s: %w", argv[0], err)
	}
	m := &Machine{
		cfg:        cfg,
		cmd:        cmd,
		exited:     make(chan struct{}),
		eventsDone: make(chan struct{}),
		done:       make(chan struct{}),
		devs:       newDevices(cfg),
	}
	go m.reap()
	if err := m.attach(ctx); err != nil {
		m.kill()
		<-m.done
		tail := m.stderrTail
		m.closeConns()
		os.RemoveAll(cfg.Scratch)
		if tail != "" {
			return nil, fmt.Errorf("vmm: starting %s: %w; qemu stderr:\n%s", cfg.Name, err, tail)
		}
		return nil, fmt.Errorf("vmm: starting %s: %w", cfg.Name, err)
	}
	return m, nil
}

func (m *Machine) attach(ctx context.Context) error {
	q, err := m.dialQMP(ctx)
	if err != nil {
		close(m.eventsDone)
		return err
	}
	m.mu.Lock()
	m.qmp = q
	m.mu.Unlock()
	go m.watchEvents()

	// QMP answers only once every chardev exists, so the console socket is
	// there now; the guest has not run yet (-S), so nothing was missed.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", m.cfg.ConsoleSocket())
	if err != nil {
		return fmt.Errorf("connecting to console: %w", err)
	}
	m.mu.Lock()
	m.console = newConsole(conn, ConsoleRetain)
	m.mu.Unlock()

	// Migration progress arrives as events, not by polling (snapshots).
	caps := map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}}
	if _, err := q.Execute(ctx, "migrate-set-capabilities", caps); err != nil {
		return err
	}
	if m.cfg.Incoming {
		return nil
	}
	if _, err := q.Execute(ctx, "cont", nil); err != nil {
		return err
	}
	return nil
}

// dialQMP waits for QEMU's QMP socket, polling, and gives up early when QEMU
// exits (a bad flag) or ctx ends.
func (m *Machine) dialQMP(ctx context.Context) (*QMP, error) {
	t := time.NewTicker(socketPoll)
	defer t.Stop()
	for {
		if _, err := os.Stat(m.cfg.QMPSocket()); err == nil {
			q, err := DialQMP(ctx, m.cfg.QMPSocket())
			if err == nil {
				return q, nil
			}
			// The socket file exists a moment before QEMU listens; retry
			// unless the context is the reason.
			if ctx.Err() != nil {
				return nil, err
			}
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("qemu exited before QMP was ready: %v", m.cmd.ProcessState)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for QMP socket: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// reap owns cmd.Wait. After the process is gone it waits for the QMP events
// QEMU sent before dying (they say why it died), then fixes the Exit.
func (m *Machine) reap() {
	_ = m.cmd.Wait() // the status is in ProcessState
	close(m.exited)
	select {
	case <-m.eventsDone:
	case <-time.After(drainTimeout):
	}
	tail := readTail(m.cfg.StderrFile(), stderrTailMax)
	m.mu.Lock()
	m.exit = Exit{Kind: classify(m.facts), ShutdownReason: m.facts.shutdownReason, State: m.cmd.ProcessState}
	m.stderrTail = tail
	m.mu.Unlock()
	close(m.done)
}

// watchEvents records what the guest and QEMU announce; it is the only
// reader of QMP events and ends when the QMP connection ends.
func (m *Machine) watchEvents() {
	defer close(m.eventsDone)
	for ev := range m.qmp.Events() {
		switch ev.Name {
		case "SHUTDOWN":
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			// A machine with GuestRebootStops ends on a guest reset; a
			// kernel panic with panic=-1 ends the same way.
			panicked := d.Reason == reasonGuestReset && m.panicSinceBoot()
			m.mu.Lock()
			if m.facts.shutdownReason == "" {
				m.facts.shutdownReason = d.Reason
			}
			m.facts.panicked = m.facts.panicked || panicked
			m.mu.Unlock()
		case "DEVICE_DELETED":
			m.deviceDeleted(ev.Data)
		case "GUEST_PANICKED":
			m.mu.Lock()
			m.facts.panicked = true
			m.mu.Unlock()
		case "RESET":
			var d struct {
				Guest  bool   `json:"guest"`
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			if d.Guest {
				m.guestReset(d.Reason)
			} else {
				// Provium's own reset: a new boot starts, nothing to judge.
				_, size := readFrom(m.cfg.ConsoleLog(), 0)
				m.mu.Lock()
				m.logOffset = size
				m.mu.Unlock()
			}
		}
	}
}

// guestReset tells a reboot from a panic. Without a pvpanic driver in the
// guest, a panicking kernel with panic=-1 just resets; the panic is then only
// visible on the console. QEMU writes the log file synchronously while the
// guest prints, so the log (unlike our socket reader) is complete when the
// RESET event arrives.
func (m *Machine) guestReset(reason string) {
	if m.panicSinceBoot() {
		m.mu.Lock()
		m.facts.panicked = true
		m.mu.Unlock()
		m.kill()
		return
	}
	if m.cfg.OnGuestReset != nil {
		m.cfg.OnGuestReset(reason)
	}
}

// panicSinceBoot reports whether the console log of the boot that just
// ended shows a kernel panic, and starts the next boot's log after it.
func (m *Machine) panicSinceBoot() bool {
	m.mu.Lock()
	from := m.logOffset
	m.mu.Unlock()
	bootLog, size := readFrom(m.cfg.ConsoleLog(), from)
	m.mu.Lock()
	m.logOffset = size
	m.mu.Unlock()
	return bytes.Contains(bootLog, []byte(panicMarker))
}

func (m *Machine) kill() {
	// The whole group: QEMU helpers die with it.
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
}

// Execute runs a QMP command on the machine; for operations this package
// does not wrap yet (hot-plug, migration).
func (m *Machine) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	return m.qmp.Execute(ctx, command, args)
}

// ConsoleChardev is the QEMU id of the serial console's chardev (argv.go).
const ConsoleChardev = "console"

// SerialBreak sends a BREAK to the guest's serial console (ttyS0), which
// Linux reads as the start of a magic sysrq sequence; the console socket
// itself is untouched.
func (m *Machine) SerialBreak(ctx context.Context) error {
	if _, err := m.qmp.Execute(ctx, "chardev-send-break", map[string]string{"id": ConsoleChardev}); err != nil {
		return fmt.Errorf("serial break on %s: %w", ConsoleChardev, err)
	}
	return nil
}

// Pause stops the vCPUs.
func (m *Machine) Pause(ctx context.Context) error { return m.simple(ctx, "stop") }

// Resume runs the vCPUs again (also the end of an incoming migration).
func (m *Machine) Resume(ctx context.Context) error { return m.simple(ctx, "cont") }

// QEMU reboot actions (-action reboot=…, QMP set-action).
const (
	rebootStop  = "shutdown" // a guest reset ends QEMU (-no-reboot)
	rebootReset = "reset"    // QEMU's default: the machine resets
)

// SystemReset presses the reset button; QEMU keeps running. The console
// marks where the new boot's output begins.
//
// QEMU applies its reboot action to host resets too, so on a machine with
// GuestRebootStops the action is lifted first and stays lifted until
// ResetDone: SeaBIOS, finding itself run before, resets the machine once
// more early in the new boot, and that reset must not end it.
func (m *Machine) SystemReset(ctx context.Context) error {
	if m.cfg.GuestRebootStops {
		if err := m.setRebootAction(ctx, rebootReset); err != nil {
			return err
		}
	}
	m.console.MarkBoot()
	return m.simple(ctx, "system_reset")
}

// ResetDone ends the window SystemReset opened: from now on a guest reset
// ends a machine with GuestRebootStops again. Call it once the new boot
// answers (or the reset failed); without GuestRebootStops it does nothing.
func (m *Machine) ResetDone(ctx context.Context) error {
	if !m.cfg.GuestRebootStops || isClosed(m.exited) {
		return nil
	}
	return m.setRebootAction(ctx, rebootStop)
}

func (m *Machine) setRebootAction(ctx context.Context, action string) error {
	if _, err := m.qmp.Execute(ctx, "set-action", map[string]string{"reboot": action}); err != nil {
		return fmt.Errorf("vmm: %s: set-action reboot=%s: %w", m.cfg.Name, action, err)
	}
	return nil
}

// PowerButton sends an ACPI power-button press; the guest decides what to do.
func (m *Machine) PowerButton(ctx context.Context) error { return m.simple(ctx, "system_powerdown") }

func (m *Machine) simple(ctx context.Context, cmd string) error {
	if _, err := m.qmp.Execute(ctx, cmd, nil); err != nil {
		return fmt.Errorf("vmm: %s: %w", m.cfg.Name, err)
	}
	return nil
}

// AgentConn dials the agent's virtio-serial port. QEMU accepts one
// connection at a time; a new one may be made after the previous closed.
func (m *Machine) AgentConn(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", m.cfg.AgentSocket())
	if err != nil {
		return nil, fmt.Errorf("vmm: %s: connecting to agent port: %w", m.cfg.Name, err)
	}
	return c, nil
}

// Quit ends the machine: QMP quit, then SIGKILL after a 2 s grace, then the
// connections are closed and the scratch directory removed. It is safe to
// call more than once and after the machine ended on its own.
func (m *Machine) Quit(ctx context.Context) error {
	m.quitOnce.Do(func() { m.quitResult = m.quit(ctx) })
	return m.quitResult
}

func (m *Machine) quit(ctx context.Context) error {
	m.mu.Lock()
	m.facts.quitRequested = true
	m.mu.Unlock()
	if !isClosed(m.exited) {
		qctx, cancel := context.WithTimeout(ctx, quitGrace)
		// An error here is expected when QEMU closes QMP while exiting.
		_, _ = m.qmp.Execute(qctx, "quit", nil)
		select {
		case <-m.exited:
		case <-qctx.Done():
			m.kill()
		}
		cancel()
	}
	<-m.done
	m.closeConns()
	if err := os.RemoveAll(m.cfg.Scratch); err != nil {
		return fmt.Errorf("vmm: removing scratch of %s: %w", m.cfg.Name, err)
	}
	return nil
}

func (m *Machine) closeConns() {
	m.mu.Lock()
	q, c := m.qmp, m.console
	m.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if q != nil {
		q.Close()
	}
}

// Done is closed when the machine has ended; Wait then returns at once.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Wait blocks until the machine has ended and says how.
func (m *Machine) Wait() Exit {
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exit
}

// Console is the live serial console.
func (m *Machine) Console() *Console { return m.console }

// ConsoleLog returns the retained console output.
func (m *Machine) ConsoleLog() []byte { return m.console.Bytes() }

// ConsoleTail returns the last n console lines (for error messages).
func (m *Machine) ConsoleTail(n int) []string { return m.console.Tail(n) }

// LogPath is the console log file (everything the guest printed on ttyS0);
// it lives in the scratch dir and is removed by Quit.
func (m *Machine) LogPath() string { return m.cfg.ConsoleLog() }

// StderrTail returns the end of QEMU's stderr.
func (m *Machine) StderrTail() string {
	if isClosed(m.done) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.stderrTail
	}
	return readTail(m.cfg.StderrFile(), stderrTailMax)
}

// PID is QEMU's process id.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Config returns the configuration the machine runs with (defaults applied).
func (m *Machine) Config() Config { return m.cfg }

func readTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimRight(string(b), "\n")
}

// readFrom returns the file's bytes from offset on and the file's size.
func readFrom(path string, off int64) ([]byte, int64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, off
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off
	}
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, off
	}
	return b, off + int64(len(b))
}
