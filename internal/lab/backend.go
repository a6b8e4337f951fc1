package lab

import (
	"context"

	"github.com/provium/provium/internal/nbd"
)

// Backend starts guests. The VM core (internal/vmm) implements it over QEMU;
// until then Env.Backend is nil and every operation that needs a running guest
// says so instead of pretending to succeed.
type Backend interface {
	// Start boots one guest and returns once its agent answers (or fails with
	// the reason and the console tail). spec.OnExit must be called, from any
	// goroutine, when the guest stops without the core asking it to.
	Start(ctx context.Context, spec BootSpec) (Machine, error)
}

// BootSpec is everything a backend needs to boot a VM.
type BootSpec struct {
	Name    string // as the user wrote it
	Path    string // `dc1/a` for VMs of sub-labs; unique in a file
	Profile string
	Opts    BootOpts // merged staged options; nil fields = profile defaults
	// NICs are the machine's network cards, in guest order; the backend
	// calls each Listen with a socket path before QEMU starts.
	NICs []NICSpec
	// OnExit reports an unrequested stop: poweroff=true when the guest powered
	// itself off (state shutdown), false when QEMU exited otherwise (dead).
	OnExit func(poweroff bool)
	// DiskControl returns the shared fault state of disk id (it outlives
	// boots: every handle of a disk and each boot's NBD export use it).
	DiskControl func(id string) *nbd.Control
}

// Machine is one running guest.
type Machine interface {
	Stop(ctx context.Context) error   // stop QEMU without guest help and reap it
	Pause(ctx context.Context) error  // stop the vCPUs
	Resume(ctx context.Context) error // continue the vCPUs
	Reset(ctx context.Context) error  // hardware reset; returns once the agent answers
	// PowerButton presses the ACPI button and returns once it is delivered
	// (a guest that powers off on it is reported through OnExit).
	PowerButton(ctx context.Context) error
	Wakeup(ctx context.Context) error // resume from S3; error when not suspended
}

// Reserver is implemented by backends that charge running VMs to a pool
// (30-runtime.md B2). lab:boot and lab:restore make one all-or-nothing
// request for all their VMs through it, so a lab never boots half-way
// holding part of the pool: Reserve returns a context the VMs' Start and
// Restore calls draw from, and a function returning what they did not
// draw. what says what the VMs are for (`booting`, `restoring`).
type Reserver interface {
	Reserve(ctx context.Context, what string, specs []BootSpec) (context.Context, func(), error)
}

// reserve asks the backend, when it is a Reserver, for the VMs' sum; specs
// are their boot specs.
func (l *Lab) reserve(ctx context.Context, what string, specs []BootSpec) (context.Context, func(), error) {
	r, ok := l.env.Backend.(Reserver)
	if !ok || len(specs) == 0 {
		return ctx, func() {}, nil
	}
	return r.Reserve(ctx, what, specs)
}
