package lab

import (
	"context"
	"errors"
)

// BootAll is `lab:boot()`: boot every direct VM that is created, shutdown or
// dead, in parallel; VMs in other states are skipped. All failures are
// reported together once every boot has finished.
func (l *Lab) BootAll(ctx context.Context) error {
	var todo []*VM
	for _, v := range l.VMs() {
		if _, err := transition(OpBoot, string(OpBoot), v.name, v.State()); err == nil {
			todo = append(todo, v)
		}
	}
	specs := make([]BootSpec, len(todo))
	for i, v := range todo {
		specs[i] = v.stagedSpec()
	}
	ctx, release, err := l.reserve(ctx, "booting", specs)
	if err != nil {
		return err
	}
	defer release()
	return forEachParallel(todo, func(v *VM) error { return v.Boot(ctx, BootOpts{}) })
}

// ShutdownAll is `lab:shutdown()`: shut every direct VM down, in parallel.
func (l *Lab) ShutdownAll(ctx context.Context) error {
	return forEachParallel(l.VMs(), func(v *VM) error { return v.Shutdown(ctx) })
}

// PauseAll is `lab:pause()`: every direct VM must be booted; on a mismatch no
// VM is touched.
func (l *Lab) PauseAll(ctx context.Context) error {
	return l.allOrNothing(OpPause, func(v *VM) error { return v.Pause(ctx) })
}

// ResumeAll is `lab:resume()`: every direct VM must be paused; on a mismatch
// no VM is touched.
func (l *Lab) ResumeAll(ctx context.Context) error {
	return l.allOrNothing(OpResume, func(v *VM) error { return v.Resume(ctx) })
}

func (l *Lab) allOrNothing(op Op, do func(*VM) error) error {
	vms := l.VMs()
	var errs []error
	for _, v := range vms {
		if _, err := v.check(op); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return forEachParallel(vms, do)
}

// forEachParallel runs do for every VM concurrently and joins the errors in
// the VMs' order, so the message does not depend on scheduling.
func forEachParallel(vms []*VM, do func(*VM) error) error {
	return errors.Join(runParallel(vms, do)...)
}
