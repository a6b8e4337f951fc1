package lab

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// fakeBackend stands in for the QEMU backend, which does not exist yet; it
// lets the state machine's backend paths run. Tests using it say "Fake".
type fakeBackend struct {
	mu       sync.Mutex
	startErr error
	starts   []BootSpec
	machines []*fakeMachine
}

type fakeMachine struct {
	mu        sync.Mutex
	calls     []string
	failOp    string // op name that fails
	onExit    func(poweroff bool)
	stopCalls int
}

func (b *fakeBackend) Start(_ context.Context, spec BootSpec) (Machine, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.starts = append(b.starts, spec)
	if b.startErr != nil {
		return nil, b.startErr
	}
	m := &fakeMachine{onExit: spec.OnExit}
	b.machines = append(b.machines, m)
	return m, nil
}

func (b *fakeBackend) last() *fakeMachine {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.machines[len(b.machines)-1]
}

func (m *fakeMachine) call(op string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, op)
	if op == "stop" {
		m.stopCalls++
	}
	if m.failOp == op {
		return errors.New(op + " failed")
	}
	return nil
}

func (m *fakeMachine) Stop(context.Context) error        { return m.call("stop") }
func (m *fakeMachine) Pause(context.Context) error       { return m.call("pause") }
func (m *fakeMachine) Resume(context.Context) error      { return m.call("resume") }
func (m *fakeMachine) Reset(context.Context) error       { return m.call("reset") }
func (m *fakeMachine) Wakeup(context.Context) error      { return m.call("wakeup") }
func (m *fakeMachine) PowerButton(context.Context) error { return m.call("power_button") }

func newFakeLab() (*Lab, *fakeBackend) {
	fb := &fakeBackend{}
	return NewRoot(Env{Profiles: StaticProfiles{"linux"}, Backend: fb}), fb
}

func TestVMWithoutBackend(t *testing.T) {
	root := newTestRoot()
	v := mustVM(t, root, "a")
	ctx := context.Background()
	wantErr(t, v.Boot(ctx, BootOpts{}), "vm:boot: no VM backend yet (booting guests arrives with the VM core)")
	if v.State() != Created {
		t.Errorf("a boot without a backend must not change state: %s", v.State())
	}
	wantErr(t, v.Pause(ctx), "vm:pause: vm `a` is created (needs booted)")
	wantErr(t, v.Resume(ctx), "vm:resume: vm `a` is created (needs paused)")
	wantErr(t, v.Reset(ctx), "vm:reset: vm `a` is created (needs booted)")
	wantErr(t, v.PowerButton(ctx), "vm:power_button: vm `a` is created (needs booted)")
	wantErr(t, v.CheckGuestOp("run"), "vm:run: vm `a` is created (needs booted)")
	if err := v.Shutdown(ctx); err != nil || v.State() != Shutdown {
		t.Errorf("shutdown from created: %v %s", err, v.State())
	}
	if err := v.Close(ctx); err != nil || v.State() != Shutdown {
		t.Errorf("close: %v %s", err, v.State())
	}
}

func TestVMBootMergesOptsFake(t *testing.T) {
	root, fb := newFakeLab()
	v, err := root.NewVM("a", "linux", BootOpts{CPUs: new(1), Memory: new(uint64(256 << 20))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Boot(ctx, BootOpts{CPUs: new(4)}); err != nil {
		t.Fatal(err)
	}
	spec := fb.starts[0]
	if spec.Name != "a" || spec.Path != "a" || spec.Profile != "linux" || *spec.Opts.CPUs != 4 || *spec.Opts.Memory != 256<<20 {
		t.Errorf("boot spec = %+v", spec)
	}
	if *v.Opts().CPUs != 4 {
		t.Error("boot opts must persist into the staged set")
	}
	wantErr(t, v.Boot(ctx, BootOpts{}), "vm:boot: vm `a` is booted (needs created, shutdown or dead)")
	if err := v.CheckGuestOp("run"); err != nil {
		t.Errorf("guest op on a booted VM: %v", err)
	}
}

func TestVMLifecycleFake(t *testing.T) {
	root, fb := newFakeLab()
	v := mustVM(t, root, "a")
	ctx := context.Background()
	steps := []struct {
		do   func() error
		want State
	}{
		{func() error { return v.Boot(ctx, BootOpts{}) }, Booted},
		{func() error { return v.Pause(ctx) }, Paused},
		{func() error { return v.Resume(ctx) }, Booted},
		{func() error { return v.Reset(ctx) }, Booted},
		{func() error { return v.Wakeup(ctx) }, Booted},
		{func() error { return v.Shutdown(ctx) }, Shutdown},
		{func() error { return v.Shutdown(ctx) }, Shutdown},
		{func() error { return v.Boot(ctx, BootOpts{}) }, Booted},
		{func() error { return v.PowerButton(ctx) }, Booted},
	}
	for i, s := range steps {
		if err := s.do(); err != nil || v.State() != s.want {
			t.Fatalf("step %d: %v, state %s, want %s", i, err, v.State(), s.want)
		}
	}
	if got := fb.machines[0].calls; !slices.Equal(got, []string{"pause", "resume", "reset", "wakeup", "stop"}) {
		t.Errorf("first machine calls = %v", got)
	}
	if got := fb.machines[1].calls; !slices.Equal(got, []string{"power_button"}) {
		t.Errorf("second machine calls = %v", got)
	}
}

// ID tells VMs apart; Boots tells one boot of a VM from the next.
func TestVMIDAndBootsFake(t *testing.T) {
	root, fb := newFakeLab()
	v := mustVM(t, root, "a")
	w := mustVM(t, root, "b")
	if v.ID() == w.ID() {
		t.Fatalf("two VMs share ID %d", v.ID())
	}
	ctx := context.Background()
	count := func(want uint64) {
		t.Helper()
		if got := v.Boots(); got != want {
			t.Fatalf("Boots() = %d, want %d", got, want)
		}
	}
	count(0)
	v.Boot(ctx, BootOpts{})
	count(1)
	v.Pause(ctx)
	v.Resume(ctx)
	count(1)
	v.Reset(ctx)
	count(2)
	fb.last().failOp = "reset"
	v.Reset(ctx)
	count(2) // a failed reset is no new boot
	v.Shutdown(ctx)
	count(2)
	fb.startErr = errors.New("no")
	v.Boot(ctx, BootOpts{})
	count(2) // nor is a failed boot
	fb.startErr = nil
	v.Boot(ctx, BootOpts{})
	count(3)
}

func TestVMBootFailureIsDeadFake(t *testing.T) {
	root, fb := newFakeLab()
	fb.startErr = errors.New("agent did not answer")
	v := mustVM(t, root, "a")
	wantErr(t, v.Boot(context.Background(), BootOpts{}), "vm:boot: vm `a` failed to boot: agent did not answer")
	if v.State() != Dead {
		t.Errorf("state = %s, want dead", v.State())
	}
	fb.startErr = nil
	if err := v.Boot(context.Background(), BootOpts{}); err != nil || v.State() != Booted {
		t.Errorf("boot from dead: %v %s", err, v.State())
	}
}

// power_button returns once the press is delivered: the VM stays booted
// until the guest's poweroff ends QEMU, and nothing is forced off.
func TestVMPowerButtonReturnsAtOnceFake(t *testing.T) {
	root, fb := newFakeLab()
	v := mustVM(t, root, "a")
	ctx := context.Background()
	if err := v.Boot(ctx, BootOpts{}); err != nil {
		t.Fatal(err)
	}
	m := fb.last()
	if err := v.PowerButton(ctx); err != nil {
		t.Fatal(err)
	}
	if v.State() != Booted || m.stopCalls != 0 {
		t.Fatalf("after the press: state %s, stops %d; want booted, 0", v.State(), m.stopCalls)
	}
	if err := v.CheckGuestOp("run"); err != nil {
		t.Errorf("guest op after the press: %v", err)
	}
	m.onExit(true) // the guest powered off
	if v.State() != Shutdown {
		t.Errorf("after the guest's poweroff: state %s, want shutdown", v.State())
	}
	m.failOp = "power_button"
	if err := v.Boot(ctx, BootOpts{}); err != nil {
		t.Fatal(err)
	}
	fb.last().failOp = "power_button"
	wantErr(t, v.PowerButton(ctx), "vm:power_button: vm `a`: power_button failed")
	if v.State() != Booted {
		t.Errorf("a failed press changed the state: %s", v.State())
	}
}

func TestVMMachineErrorKeepsStateFake(t *testing.T) {
	root, fb := newFakeLab()
	v := mustVM(t, root, "a")
	ctx := context.Background()
	v.Boot(ctx, BootOpts{})
	fb.last().failOp = "pause"
	wantErr(t, v.Pause(ctx), "vm:pause: vm `a`: pause failed")
	if v.State() != Booted {
		t.Errorf("state = %s", v.State())
	}
	fb.last().failOp = "stop"
	if err := v.Close(ctx); err == nil || v.State() != Shutdown {
		t.Errorf("close must report a failed stop to the walker and still end shutdown: %v %s", err, v.State())
	}
}

func TestVMUnrequestedExitFake(t *testing.T) {
	root, fb := newFakeLab()
	ctx := context.Background()
	crash := mustVM(t, root, "crash")
	crash.Boot(ctx, BootOpts{})
	crashM := fb.last()
	crashM.onExit(false)
	if crash.State() != Dead {
		t.Errorf("QEMU exiting unasked: %s, want dead", crash.State())
	}
	off := mustVM(t, root, "off")
	off.Boot(ctx, BootOpts{})
	off.Pause(ctx)
	fb.last().onExit(true)
	if off.State() != Shutdown {
		t.Errorf("guest poweroff: %s, want shutdown", off.State())
	}
	// A late report from an old QEMU must not touch the new one.
	crash.Boot(ctx, BootOpts{})
	crashM.onExit(false)
	if crash.State() != Booted {
		t.Errorf("stale exit report changed state to %s", crash.State())
	}
	// Nor may the exit caused by a requested shutdown.
	m := fb.last()
	crash.Shutdown(ctx)
	m.onExit(false)
	if crash.State() != Shutdown {
		t.Errorf("requested stop then exit report: %s", crash.State())
	}
}

func TestLabBatchLifecycleFake(t *testing.T) {
	root, fb := newFakeLab()
	ctx := context.Background()
	a := mustVM(t, root, "a")
	b := mustVM(t, root, "b")
	sub, _ := root.SubLab("sub")
	c := mustVM(t, sub, "c")
	b.Boot(ctx, BootOpts{}) // already booted: skipped by BootAll
	if err := root.BootAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fb.starts) != 2 || a.State() != Booted || c.State() != Created {
		t.Errorf("BootAll: %d starts, a %s, c %s (sub-labs are not direct VMs)", len(fb.starts), a.State(), c.State())
	}
	a.Pause(ctx)
	err := root.PauseAll(ctx)
	wantErr(t, err, "vm:pause: vm `a` is paused (needs booted)")
	if b.State() != Booted {
		t.Error("PauseAll must not touch any VM on a mismatch")
	}
	a.Resume(ctx)
	if err := root.PauseAll(ctx); err != nil || a.State() != Paused || b.State() != Paused {
		t.Errorf("PauseAll: %v", err)
	}
	if err := root.ResumeAll(ctx); err != nil || a.State() != Booted {
		t.Errorf("ResumeAll: %v", err)
	}
	if err := root.ShutdownAll(ctx); err != nil || a.State() != Shutdown || b.State() != Shutdown {
		t.Errorf("ShutdownAll: %v", err)
	}
}

func TestScopeCloseShutsVMsDownFake(t *testing.T) {
	root, fb := newFakeLab()
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		v := mustVM(t, root, n)
		v.Boot(ctx, BootOpts{})
	}
	if errs := root.Scope().Close(ctx); len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, m := range fb.machines {
		if m.stopCalls != 1 {
			t.Errorf("machine stopped %d times", m.stopCalls)
		}
	}
	for _, v := range root.VMs() {
		if v.State() != Shutdown {
			t.Errorf("%s is %s after scope close", v.Name(), v.State())
		}
	}
}
