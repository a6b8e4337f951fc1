package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// VM error texts.
const (
	errFmtNoBackend  = "vm:%s: no VM backend yet (booting guests arrives with the VM core)"
	errFmtBootFailed = "vm:boot: vm `%s` failed to boot: %v"
	errFmtVMOpFailed = "vm:%s: vm `%s`: %v"
)

// VM is a declared virtual machine: its identity, staged boot options and
// lifecycle state. Methods are safe for concurrent use; lifecycle operations on
// one VM run one at a time.
type VM struct {
	name    string
	profile string
	lab     *Lab // the lab that created it: fixes its path and backend
	backend Backend
	created uint64 // creation sequence number within the file (Lab.created)

	opMu sync.Mutex // serialises lifecycle operations (may be held across backend calls)

	mu      sync.Mutex // guards the fields below; never held across backend calls
	state   State
	opts    BootOpts
	machine Machine
	gen     uint64 // bumped per start and per requested stop; stale OnExit calls are ignored
	boots   uint64 // boots, restores and resets the host asked for that succeeded
	// lastEnd is how the previous machine ended ("shut down", "dead",
	// "restored"); since is how the current one came to be (the lastEnd
	// before a boot, "restored" for a restore). Stale-handle messages use
	// them (10-lua-api.md §1).
	lastEnd, since string
	// disks holds every disk handed out by Disk/AttachDisk and the fault
	// state of each disk id, which outlives boots (disk.go).
	disks      map[string]*Disk
	nics       []*NIC // attach order
	nicSeq     int    // QEMU NIC ids handed out in the current machine
	netApplied bool   // the current guest got a network configuration

	netMu sync.Mutex // serialises guest network configuration
}

func newVM(l *Lab, name, profile string, opts BootOpts) *VM {
	return &VM{name: name, profile: profile, lab: l, backend: l.env.Backend, opts: opts, state: Created, created: l.created.Add(1)}
}

func (v *VM) memberKind() MemberKind { return KindVM }

// Name is the VM's name as declared.
func (v *VM) Name() string { return v.name }

// Profile is the profile the VM boots from.
func (v *VM) Profile() string { return v.profile }

// Lab is the lab that created the VM (include adds memberships, not owners).
func (v *VM) Lab() *Lab { return v.lab }

// Path is the VM's name qualified by its sub-lab path (`dc1/a`); plain name in
// the root and test scopes. It names the VM in events and console tails.
func (v *VM) Path() string { return joinPath(v.lab.Path(), v.name) }

// ID numbers the VM within its file (VMs and bridges share the sequence):
// two VMs never have the same ID, whatever their names.
func (v *VM) ID() uint64 { return v.created }

// Boots counts the boots, restores and resets of the VM that the host asked
// for and that succeeded: it tells one boot of the VM from the next (a
// reboot the guest does itself does not count).
func (v *VM) Boots() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.boots
}

// State is the current lifecycle state.
func (v *VM) State() State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

// Opts returns the staged boot options. The slices are fresh; pointed-to
// scalars are shared and, like every BootOpts value, must not be modified.
func (v *VM) Opts() BootOpts {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.opts.Merge(BootOpts{})
}

// restoreStaged puts back the staged options and unbooted state a lab
// snapshot recorded; the VM is not running (the caller shut it down).
func (v *VM) restoreStaged(opts BootOpts, state State) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.opts = opts.Merge(BootOpts{})
	if v.state == Created || v.state == Shutdown || v.state == Dead {
		v.state = state
	}
}

// stagedSpec is the boot spec of the staged options (what a plain boot
// would start), for reservations.
func (v *VM) stagedSpec() BootSpec {
	v.mu.Lock()
	defer v.mu.Unlock()
	return BootSpec{Name: v.name, Path: v.Path(), Profile: v.profile, Opts: v.opts.Merge(BootOpts{})}
}

// CheckGuestOp returns the wrong-state error for guest operation `method`
// (run, read_file, …) unless the VM is booted.
func (v *VM) CheckGuestOp(method string) error {
	_, err := transition(OpGuest, method, v.name, v.State())
	return err
}

// check runs the transition for op without applying it.
func (v *VM) check(op Op) (State, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return transition(op, string(op), v.name, v.state)
}

// Boot merges opts into the staged set and boots the guest. The merged set is
// kept (§5.2: boot options persist). A backend failure leaves the VM dead.
func (v *VM) Boot(ctx context.Context, opts BootOpts) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if _, err := v.check(OpBoot); err != nil {
		return err
	}
	v.mu.Lock()
	v.opts = v.opts.Merge(opts)
	spec := BootSpec{Name: v.name, Path: v.Path(), Profile: v.profile, Opts: v.opts.Merge(BootOpts{}), DiskControl: v.diskControl}
	v.gen++
	gen := v.gen
	v.mu.Unlock()

	if v.backend == nil {
		return fmt.Errorf(errFmtNoBackend, OpBoot)
	}
	nicSpecs, nics, err := v.bootNICs()
	if err != nil {
		v.mu.Lock()
		v.state = Dead
		v.mu.Unlock()
		return fmt.Errorf(errFmtBootFailed, v.name, err)
	}
	spec.NICs = nicSpecs
	spec.OnExit = func(poweroff bool) { v.exited(gen, poweroff) }
	start := time.Now()
	m, err := v.backend.Start(ctx, spec)
	if took := time.Since(start).Round(time.Millisecond); err == nil {
		defer v.observe("booted in %s", took)
	} else {
		defer v.observe("failed to boot (dead)")
	}

	v.mu.Lock()
	if err != nil {
		v.state = Dead
		v.mu.Unlock()
		return fmt.Errorf(errFmtBootFailed, v.name, err)
	}
	if v.gen != gen {
		// The guest exited before Start returned; exited() could not apply it
		// yet, so it is dead now.
		v.state = Dead
		v.mu.Unlock()
		return fmt.Errorf(errFmtBootFailed, v.name, errors.New("guest exited during boot"))
	}
	v.machine = m
	v.state = Booted
	v.since = v.lastEnd
	v.boots++
	v.mu.Unlock()
	return v.netUp(ctx, "vm:boot", nicSpecs, nics)
}

// netUp finishes the network of a machine that just started: device ids,
// link states, then the guest's configuration and every other member's
// hosts entries.
func (v *VM) netUp(ctx context.Context, site string, specs []NICSpec, nics []*NIC) error {
	if len(nics) == 0 {
		return nil
	}
	if err := v.plugged(ctx, specs, nics); err != nil {
		return fmt.Errorf(errFmtNetConfig, site, v.name, err)
	}
	if err := v.applyNet(ctx, site); err != nil {
		return err
	}
	var errs []error
	var seen []*Bridge
	for _, n := range nics {
		if !slices.Contains(seen, n.bridge) {
			seen = append(seen, n.bridge)
			for _, err := range n.bridge.refreshGuests(ctx, site) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// exited applies an unrequested stop reported by the backend for start
// generation gen.
func (v *VM) exited(gen uint64, poweroff bool) {
	if what := v.applyExit(gen, poweroff); what != "" {
		v.unplugAll()
		v.observe("%s", what)
	}
}

// applyExit is exited under the lock; it returns what to report ("" when
// the report was stale).
func (v *VM) applyExit(gen uint64, poweroff bool) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if gen != v.gen {
		return "" // a stop the core asked for, or an older QEMU
	}
	v.gen++ // later reports of this generation are stale
	if v.machine == nil {
		return "" // still inside Boot; it sees the bumped generation
	}
	op, how, what := OpCrash, "dead", "exited unexpectedly (dead)"
	if poweroff {
		op, how, what = OpPoweroff, "shut down", "powered off (shutdown)"
	}
	to, err := transition(op, string(op), v.name, v.state)
	if err != nil {
		return ""
	}
	v.state = to
	v.markEnded(v.machine, how)
	v.machine = nil
	return what
}

// opDone words a completed machine operation for Env.Observe.
var opDone = map[Op]string{OpPause: "paused", OpResume: "resumed", OpReset: "reset", OpWakeup: "woken up", OpPowerButton: "power button pressed"}

// observe reports a lifecycle change to Env.Observe.
func (v *VM) observe(format string, args ...any) {
	if o := v.lab.env.Observe; o != nil {
		o(v, fmt.Sprintf(format, args...))
	}
}

// markEnded records how machine m ended. Caller holds v.mu.
func (v *VM) markEnded(m Machine, how string) {
	if m != nil {
		v.lastEnd = how
	}
}

// Since says how the VM's current machine came to be: "restored", or how
// the machine before it ended ("shut down", "dead"); "" for a first boot.
func (v *VM) Since() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.since
}

// Pause stops the guest's vCPUs (booted → paused).
func (v *VM) Pause(ctx context.Context) error {
	return v.machineOp(ctx, OpPause, Machine.Pause)
}

// Resume continues a paused guest (paused → booted).
func (v *VM) Resume(ctx context.Context) error {
	return v.machineOp(ctx, OpResume, Machine.Resume)
}

// Reset is a hardware reset; the VM stays booted.
func (v *VM) Reset(ctx context.Context) error {
	return v.machineOp(ctx, OpReset, Machine.Reset)
}

// Wakeup resumes a suspended guest.
func (v *VM) Wakeup(ctx context.Context) error {
	return v.machineOp(ctx, OpWakeup, Machine.Wakeup)
}

// machineOp runs one state-checked call on the running machine and applies the
// transition when it succeeds.
func (v *VM) machineOp(ctx context.Context, op Op, call func(Machine, context.Context) error) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	to, err := v.check(op)
	if err != nil {
		return err
	}
	m := v.currentMachine()
	if m == nil {
		return fmt.Errorf(errFmtNoBackend, op)
	}
	if err := call(m, ctx); err != nil {
		return fmt.Errorf(errFmtVMOpFailed, op, v.name, err)
	}
	defer v.observe("%s", opDone[op])
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.machine == m { // the guest may have exited meanwhile; that state wins
		v.state = to
		if op == OpReset {
			v.boots++
		}
	}
	return nil
}

// Machine returns the running machine: nil unless the VM is booted or
// paused. Guest operations reach the agent through it.
func (v *VM) Machine() Machine { return v.currentMachine() }

func (v *VM) currentMachine() Machine {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.machine
}

// PowerButton presses the ACPI power button and returns once the press is
// delivered; the guest decides what to do with it, as on real hardware (a
// guest that powers off makes the VM shutdown when its QEMU exits, through
// OnExit). peios/integration-tests presses it while the guest's init is
// busy and keeps using the VM.
func (v *VM) PowerButton(ctx context.Context) error {
	return v.machineOp(ctx, OpPowerButton, Machine.PowerButton)
}

// Shutdown stops the guest without its help; from any state, idempotent.
func (v *VM) Shutdown(ctx context.Context) error {
	return v.shutdownAs(ctx, "shut down")
}

// shutdownAs is Shutdown recording `how` as the machine's end (a lab restore
// shuts a VM down to restore it: its handles then read "restored").
func (v *VM) shutdownAs(ctx context.Context, how string) error {
	if err := v.stop(ctx, OpShutdown, how); err != nil {
		return fmt.Errorf(errFmtVMOpFailed, OpShutdown, v.name, err)
	}
	return nil
}

// Close is the scope walker's hook: like Shutdown, and it reports a failure to
// stop QEMU only to the walker (the Lua close() never raises).
func (v *VM) Close(ctx context.Context) error {
	if err := v.stop(ctx, OpClose, "shut down"); err != nil {
		return fmt.Errorf("vm `%s`: %w", v.Path(), err)
	}
	return nil
}

func (v *VM) stop(ctx context.Context, op Op, how string) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if _, err := v.check(op); err != nil {
		return err
	}
	v.mu.Lock()
	m := v.machine
	v.gen++
	v.markEnded(m, how)
	v.mu.Unlock()
	var err error
	if m != nil {
		err = m.Stop(ctx)
		v.observe("shut down")
	}
	v.setStopped()
	return err
}

func (v *VM) setStopped() {
	v.mu.Lock()
	v.machine = nil
	v.state = Shutdown
	v.mu.Unlock()
	v.unplugAll()
}
