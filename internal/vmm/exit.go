package vmm

import (
	"fmt"
	"os"
)

// ExitKind classifies how a machine's QEMU process ended. The lab branches on
// it: a guest poweroff is a normal VM shutdown, a panic or an unexpected exit
// makes the VM dead.
type ExitKind int

const (
	// ExitUnexpected: QEMU ended without the guest or Provium asking for it
	// (crash, killed by someone else, a host-side shutdown request).
	ExitUnexpected ExitKind = iota
	// ExitGuestPoweroff: the guest powered itself off.
	ExitGuestPoweroff
	// ExitGuestPanic: the guest kernel panicked (pvpanic, or a panic seen on
	// the console followed by the guest's reset).
	ExitGuestPanic
	// ExitQuit: Provium ended the machine (Quit).
	ExitQuit
	// ExitGuestReboot: the guest reset itself and the machine has
	// Config.GuestRebootStops.
	ExitGuestReboot
)

func (k ExitKind) String() string {
	switch k {
	case ExitGuestPoweroff:
		return "guest poweroff"
	case ExitGuestPanic:
		return "guest kernel panicked"
	case ExitQuit:
		return "quit"
	case ExitGuestReboot:
		return "guest reboot"
	}
	return "unexpected exit"
}

// Exit describes the end of a machine.
type Exit struct {
	Kind ExitKind
	// ShutdownReason is the reason of QEMU's last SHUTDOWN event
	// ("guest-shutdown", "guest-panic", "host-qmp-quit", "host-signal", …);
	// "" when QEMU ended without one (e.g. SIGKILL).
	ShutdownReason string
	// State is the process's exit status (exit code or signal).
	State *os.ProcessState
}

func (e Exit) String() string {
	s := e.Kind.String()
	if e.ShutdownReason != "" {
		s += " (" + e.ShutdownReason + ")"
	}
	if e.State != nil {
		s += fmt.Sprintf(": qemu %s", e.State)
	}
	return s
}

// QMP SHUTDOWN reasons we act on.
const (
	reasonGuestShutdown = "guest-shutdown"
	reasonGuestPanic    = "guest-panic"
	reasonGuestReset    = "guest-reset"
)

// exitFacts is what the machine observed before the process ended.
type exitFacts struct {
	quitRequested  bool
	panicked       bool // GUEST_PANICKED, or a console panic before a reset
	shutdownReason string
}

// classify is the single place that decides an ExitKind.
func classify(f exitFacts) ExitKind {
	switch {
	case f.panicked || f.shutdownReason == reasonGuestPanic:
		return ExitGuestPanic
	case f.shutdownReason == reasonGuestShutdown:
		// Before quitRequested: a Quit racing a guest poweroff does not
		// hide that the guest powered off first.
		return ExitGuestPoweroff
	case f.shutdownReason == reasonGuestReset:
		// Only a machine with GuestRebootStops shuts down for this
		// reason; otherwise QEMU resets and keeps running.
		return ExitGuestReboot
	case f.quitRequested:
		return ExitQuit
	}
	return ExitUnexpected
}
