package vmm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

const marker = "PROVIUM-MARKER-OK"

// The guest prints a marker and powers off: the machine ends on its own, and
// that is a guest poweroff, not an unexpected exit.
func TestBootGuestPoweroff(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\n/bin/busybox poweroff -f\n")
	m, start := startMachine(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := m.Console().WaitFor(ctx, 0, []byte(marker)); err != nil {
		t.Fatalf("marker: %v\nconsole: %q\nstderr: %s", err, m.ConsoleTail(20), m.StderrTail())
	}
	t.Logf("boot to marker: %s (kernel %s)", time.Since(start), cfg.Kernel)
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatal("guest did not power off")
	}
	exit := m.Wait()
	t.Logf("boot to exit: %s; %s", time.Since(start), exit)
	if exit.Kind != ExitGuestPoweroff || exit.ShutdownReason != "guest-shutdown" {
		t.Errorf("exit %v, want a guest poweroff", exit)
	}
	log, err := os.ReadFile(m.LogPath())
	if err != nil || !bytes.Contains(log, []byte(marker)) {
		t.Errorf("console log file lacks the marker (%v): %q", err, log)
	}
	if !bytes.Contains(m.ConsoleLog(), []byte(marker)) {
		t.Error("in-memory console lacks the marker")
	}
	if err := m.Quit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir survives Quit: %v", err)
	}
	waitGoroutines(t, goroutines)
}

// A guest that keeps running: console both ways, pause/resume, the agent
// port, then Quit ends QEMU and removes everything.
func TestRunningMachineQuit(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\nread line\n/bin/busybox echo got:$line\n/bin/busybox sleep 100000\n")
	m, start := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	c := m.Console()
	off, err := c.WaitFor(ctx, 0, []byte(marker))
	if err != nil {
		t.Fatalf("marker: %v\nconsole: %q", err, m.ConsoleTail(20))
	}
	t.Logf("boot to marker: %s", time.Since(start))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(ctx, off, []byte("got:hello")); err != nil {
		t.Fatalf("echo: %v\nconsole: %q", err, m.ConsoleTail(20))
	}

	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(t, m); st != "paused" {
		t.Errorf("after Pause: %s", st)
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(t, m); st != "running" {
		t.Errorf("after Resume: %s", st)
	}

	conn, err := m.AgentConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// Without acpid the guest ignores the power button; QEMU accepts it.
	if err := m.PowerButton(ctx); err != nil {
		t.Error(err)
	}
	// A reset keeps the same QEMU: the guest boots again.
	off = c.Offset()
	if err := m.SystemReset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(ctx, off, []byte(marker)); err != nil {
		t.Fatalf("no second boot after SystemReset: %v", err)
	}

	pid := m.PID()
	quitStart := time.Now()
	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("quit: %s", time.Since(quitStart))
	if exit := m.Wait(); exit.Kind != ExitQuit {
		t.Errorf("exit %v, want quit", exit)
	}
	if !processGone(pid) {
		t.Errorf("qemu pid %d still exists", pid)
	}
	if _, err := os.Stat(cfg.Scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir survives Quit: %v", err)
	}
	waitGoroutines(t, goroutines)
}

func status(t *testing.T, m *Machine) string {
	t.Helper()
	raw, err := m.Execute(context.Background(), "query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Status string }
	json.Unmarshal(raw, &st)
	return st.Status
}

// QEMU killed behind our back is an unexpected exit.
func TestUnexpectedKill(t *testing.T) {
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\n/bin/busybox sleep 100000\n")
	m, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := m.Console().WaitFor(ctx, 0, []byte(marker)); err != nil {
		t.Fatalf("marker: %v", err)
	}
	if err := syscall.Kill(m.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := m.Wait()
	if exit.Kind != ExitUnexpected || exit.ShutdownReason != "" {
		t.Errorf("exit %v, want unexpected", exit)
	}
	if exit.State == nil || exit.State.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit state %v, want killed by SIGKILL", exit.State)
	}
	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir survives Quit: %v", err)
	}
}

// PID 1 exiting panics the kernel. Debian builds the pvpanic driver as a
// module this initrd does not load, so the panic is recognised from the
// console when the guest resets (panic=-1); either way it is a panic.
func TestGuestPanic(t *testing.T) {
	t.Run("reboot resets", func(t *testing.T) { testGuestPanic(t, false) })
	// The panic's reset ends QEMU there (SHUTDOWN guest-reset): still a panic.
	t.Run("reboot stops", func(t *testing.T) { testGuestPanic(t, true) })
}

func testGuestPanic(t *testing.T, rebootStops bool) {
	var resets []string
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\nexit 3\n")
	cfg.GuestRebootStops = rebootStops
	cfg.OnGuestReset = func(r string) { resets = append(resets, r) }
	m, start := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("panicking guest did not end; console: %q", m.ConsoleTail(20))
	}
	exit := m.Wait()
	t.Logf("boot to panic exit: %s; %s", time.Since(start), exit)
	if exit.Kind != ExitGuestPanic {
		t.Errorf("exit %v, want guest panic; console: %q", exit, m.ConsoleTail(20))
	}
	if len(resets) != 0 {
		t.Errorf("panic reported as reboot(s): %q", resets)
	}
	if !strings.Contains(strings.Join(m.ConsoleTail(50), "\n"), "Kernel panic") {
		t.Errorf("console tail lacks the panic: %q", m.ConsoleTail(20))
	}
}

// A QEMU that refuses its command line: Start fails with QEMU's own words and
// leaves nothing behind.
func TestStartFailureCarriesStderr(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Kernel = cfg.Scratch + "-missing-kernel"
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err == nil {
		m.Quit(ctx)
		t.Fatal("Start succeeded with a missing kernel")
	}
	if !strings.Contains(err.Error(), "qemu stderr") || !strings.Contains(err.Error(), "missing-kernel") {
		t.Errorf("error lacks QEMU's stderr: %v", err)
	}
	if _, err := os.Stat(cfg.Scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir survives a failed Start: %v", err)
	}
}

// rebootingGuest is the config of a guest that prints the marker and
// reboots itself; the channel receives the reasons OnGuestReset reports.
func rebootingGuest(t *testing.T, stops bool) (Config, <-chan string) {
	resets := make(chan string, 8)
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\n/bin/busybox reboot -f\n")
	cfg.GuestRebootStops = stops
	cfg.OnGuestReset = func(r string) {
		select {
		case resets <- r:
		default:
		}
	}
	return cfg, resets
}

// A guest that reboots itself keeps its QEMU: the reset is reported through
// OnGuestReset, the machine stays up.
func TestGuestRebootKeepsMachine(t *testing.T) {
	cfg, resets := rebootingGuest(t, false)
	m, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	select {
	case r := <-resets:
		if r != "guest-reset" {
			t.Errorf("reset reason %q", r)
		}
	case <-m.Done():
		t.Fatalf("machine ended on a guest reboot: %v", m.Wait())
	case <-ctx.Done():
		t.Fatal("no reset")
	}
	if isClosed(m.Done()) {
		t.Fatalf("machine ended on a guest reboot: %v", m.Wait())
	}
	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if exit := m.Wait(); exit.Kind != ExitQuit {
		t.Errorf("exit %v, want quit", exit)
	}
}

// With GuestRebootStops (upstream's -no-reboot), a guest that reboots itself
// ends QEMU: a guest reboot, not a reset that keeps the machine.
func TestGuestRebootStopsMachine(t *testing.T) {
	cfg, resets := rebootingGuest(t, true)
	m, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("machine still runs after the guest rebooted; console: %q", m.ConsoleTail(20))
	}
	if exit := m.Wait(); exit.Kind != ExitGuestReboot || exit.ShutdownReason != "guest-reset" {
		t.Errorf("exit %v, want a guest reboot", exit)
	}
	if len(resets) != 0 {
		t.Errorf("a stopping reboot was reported as a reset: %q", <-resets)
	}
	if !strings.Contains(string(m.ConsoleLog()), marker) {
		t.Errorf("console lost the boot's output: %q", m.ConsoleTail(20))
	}
}

// The host's reset keeps a GuestRebootStops machine, through SeaBIOS's own
// second reset early in the new boot; once ResetDone, the new boot's
// reboot ends it.
func TestSystemResetKeepsGuestRebootStops(t *testing.T) {
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\nread line\n/bin/busybox reboot -f\n")
	cfg.GuestRebootStops = true
	cfg.BIOS = "bios-256k.bin" // SeaBIOS, which profiles without guest_os boot
	m, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*bootTimeout)
	defer cancel()
	if _, err := m.Console().WaitFor(ctx, 0, []byte(marker)); err != nil {
		t.Fatalf("marker: %v\nconsole: %q", err, m.ConsoleTail(20))
	}
	if err := m.SystemReset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Console().WaitFor(ctx, m.Console().BootStart(), []byte(marker)); err != nil {
		t.Fatalf("no second boot after the host's reset: %v (%v)\nconsole: %q", err, m.Wait(), m.ConsoleTail(20))
	}
	if err := m.ResetDone(ctx); err != nil {
		t.Fatal(err)
	}
	if isClosed(m.Done()) {
		t.Fatalf("machine ended after the host's reset: %v", m.Wait())
	}
	m.Console().Write([]byte("\n"))
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatalf("machine still runs after the guest rebooted; console: %q", m.ConsoleTail(20))
	}
	if exit := m.Wait(); exit.Kind != ExitGuestReboot {
		t.Errorf("exit %v, want a guest reboot", exit)
	}
}

// microvm: no PCI, virtio-mmio, ACPI poweroff through its GED; hot-plug is
// refused with the reason.
func TestMicroVMBootAndNoHotplug(t *testing.T) {
	cfg := testConfig(t, "/bin/busybox echo "+marker+"\nread line\n/bin/busybox poweroff -f\n")
	cfg.Machine = MachineMicroVM
	m, start := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := m.Console().WaitFor(ctx, 0, []byte(marker)); err != nil {
		t.Fatalf("marker: %v\nconsole: %q\nstderr: %s", err, m.ConsoleTail(20), m.StderrTail())
	}
	t.Logf("microvm boot to marker: %s", time.Since(start))
	err := m.AttachDisk(ctx, Disk{ID: "d", Path: "/dev/null"})
	if !errors.Is(err, ErrNoHotplug) {
		t.Errorf("AttachDisk on microvm: %v, want ErrNoHotplug", err)
	}
	if !errors.Is(m.Detach(ctx, "d"), ErrNoHotplug) {
		t.Error("Detach on microvm not refused")
	}
	m.Console().Write([]byte("\n"))
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatal("microvm guest did not power off")
	}
	if exit := m.Wait(); exit.Kind != ExitGuestPoweroff {
		t.Errorf("exit %v, want guest poweroff", exit)
	}
}
