// Package guestinit holds the agent's PID-1 duties inside a guest: choosing
// standalone or chain mode, mounting the early filesystems, applying the
// boot inputs, reaping orphans, the power button, and finding and serving
// the virtio-serial agent port.
package guestinit

import (
	"path"
	"slices"
)

// Mode is how the agent binary was started.
type Mode int

const (
	// Standalone: the agent is the guest's init (no /init in the initrd,
	// or the agent itself is /init).
	Standalone Mode = iota
	// Chain: the initrd has its own /init; the agent forks itself off as
	// the server and execs /init unchanged as PID 1.
	Chain
	// Worker: a re-exec'd worker process (--worker-fd N); no init duties.
	Worker
)

func (m Mode) String() string {
	switch m {
	case Standalone:
		return "standalone"
	case Chain:
		return "chain"
	case Worker:
		return "worker"
	}
	return "unknown"
}

// DecideMode picks the mode from argv and whether /init exists. It looks
// only at argv[0], never /proc (not mounted yet): if the agent was itself
// started as /init, chaining to /init would exec itself forever.
func DecideMode(argv []string, initExists bool) Mode {
	if slices.ContainsFunc(argv, func(a string) bool {
		return a == "--worker-fd" || len(a) > len("--worker-fd=") && a[:len("--worker-fd=")] == "--worker-fd="
	}) {
		return Worker
	}
	if !initExists {
		return Standalone
	}
	if len(argv) > 0 && startedAsInit(argv[0]) {
		return Standalone
	}
	return Chain
}

func startedAsInit(arg0 string) bool {
	return arg0 == "init" || path.Clean(arg0) == "/init"
}
