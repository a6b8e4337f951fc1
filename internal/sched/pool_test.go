package sched

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an Observer that keeps the events as lines.
type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.evs = append(r.evs, s); r.mu.Unlock() }
func (r *recorder) FileBlocked(p string, w Amount, reason string) {
	r.add(fmt.Sprintf("blocked %s %s %s", p, w, reason))
}
func (r *recorder) FileDispatched(p string, a Amount) { r.add(fmt.Sprintf("dispatched %s %s", p, a)) }
func (r *recorder) ClaimAcquired(p string, a Amount)  { r.add(fmt.Sprintf("acquired %s %s", p, a)) }
func (r *recorder) ClaimReleased(p string, a Amount)  { r.add(fmt.Sprintf("released %s %s", p, a)) }
func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evs...)
}

// eventually polls cond; it fails the test (never hangs) after a generous
// limit. It asserts no timing: only that the state is reached.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never reached: %s", what)
}

func admit(t *testing.T, p *Pool, path string, declared *Amount) *File {
	t.Helper()
	f, err := p.Admit(context.Background(), path, declared)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPoolArithmetic(t *testing.T) {
	p := New(Config{Total: Amount{2 * gib, 4}})
	p.Enqueue(2)
	a := admit(t, p, "a", nil)
	b := admit(t, p, "b", &Amount{512 * mib, 2})
	st := p.State()
	want := State{Total: Amount{2 * gib, 4}, Used: Amount{612 * mib, 2}, Available: Amount{2*gib - 612*mib, 2},
		Reserved: Amount{612 * mib, 2}, Running: 2}
	if st != want {
		t.Fatalf("after dispatch: %+v\nwant %+v", st, want)
	}
	ha, err := a.Acquire(context.Background(), "vm `x`", VMCharge(256*mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Acquire(context.Background(), "vm `y`", VMCharge(256*mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	st = p.State()
	// a's VM is on the pool; b's draws from b's claim.
	if st.Used != (Amount{968 * mib, 3}) || st.InUse != (Amount{712 * mib, 2}) || st.Reserved != (Amount{612 * mib, 2}) {
		t.Fatalf("with VMs: %+v", st)
	}
	ha.Release()
	ha.Release() // twice is harmless
	hb.Release()
	if st := p.State(); st.Used != (Amount{612 * mib, 2}) || !st.InUse.IsZero() {
		t.Fatalf("after release: %+v", st)
	}
	a.Done()
	b.Done()
	b.Done()
	if st := p.State(); !st.Used.IsZero() || !st.Reserved.IsZero() || st.Running != 0 || st.Available != p.Total() {
		t.Fatalf("after done: %+v", st)
	}
}

func TestWholePoolAndClaimMessages(t *testing.T) {
	p := New(Config{Total: Amount{gib, 2}})
	f := admit(t, p, "a", nil)
	_, err := f.Acquire(context.Background(), "vm `big`", VMCharge(gib, 1))
	if err == nil || err.Error() != "vm `big` needs 1.1 GiB and 1 cpu, more than the whole pool (1 GiB and 2 cpus); lower it or raise --mem/--cpus" {
		t.Fatalf("whole pool: %v", err)
	}
	if err := f.Claim(context.Background(), Amount{2 * gib, 1}); err == nil ||
		err.Error() != "provium:claim needs 2 GiB and 1 cpu, more than the whole pool (1 GiB and 2 cpus); lower it or raise --mem/--cpus" {
		t.Fatalf("claim over the pool: %v", err)
	}
	if err := f.Claim(context.Background(), Amount{600 * mib, 1}); err != nil {
		t.Fatal(err)
	}
	h, err := f.Acquire(context.Background(), "vm `a`", VMCharge(256*mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Acquire(context.Background(), "vm `b`", VMCharge(256*mib, 1))
	if err == nil || err.Error() != "vm `b` needs 356 MiB and 1 cpu but this file's claim is 600 MiB and 1 cpu with 356 MiB and 1 cpu already in use; raise provium:claim to the file's peak" {
		t.Fatalf("over the claim: %v", err)
	}
	if err := f.Claim(context.Background(), Amount{300 * mib, 1}); err == nil ||
		err.Error() != "claim of 300 MiB and 1 cpu is smaller than the 356 MiB and 1 cpu this file's VMs already hold" {
		t.Fatalf("claim below the VMs: %v", err)
	}
	h.Release()
	f.Done()
}

func TestDeclaredClaimOverThePoolIsNotReserved(t *testing.T) {
	rec := &recorder{}
	p := New(Config{Total: Amount{gib, 2}, Observer: rec})
	f := admit(t, p, "big", &Amount{4 * gib, 1})
	if st := p.State(); st.Used != (Amount{Memory: FileOverhead}) {
		t.Fatalf("used %+v", st)
	}
	if err := f.Claim(context.Background(), Amount{4 * gib, 1}); err == nil || !strings.Contains(err.Error(), "more than the whole pool") {
		t.Fatalf("claim: %v", err)
	}
	f.Done()
	if got := strings.Join(rec.lines(), "\n"); got != "dispatched big 50 MiB and 0 cpus" {
		t.Fatalf("events:\n%s", got)
	}
}

func TestAdmitFIFOAndBlockedOnce(t *testing.T) {
	rec := &recorder{}
	p := New(Config{Total: Amount{gib, 2}, Observer: rec})
	p.Enqueue(2)
	claim := Amount{600 * mib, 1}
	a := admit(t, p, "a", &claim)
	got := make(chan *File)
	go func() {
		f, _ := p.Admit(context.Background(), "b", &claim)
		got <- f
	}()
	eventually(t, "b blocked", func() bool { return len(rec.lines()) == 3 })
	if p.State().Queued != 1 {
		t.Fatalf("queued = %d", p.State().Queued)
	}
	// An unrelated change does not repeat file_blocked.
	h, err := a.Acquire(context.Background(), "vm `x`", VMCharge(100*mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	a.Done()
	b := <-got
	b.Done()
	want := []string{
		"dispatched a 650 MiB and 1 cpu", "acquired a 600 MiB and 1 cpu",
		"blocked b 650 MiB and 1 cpu pool_full",
		"released a 600 MiB and 1 cpu",
		"dispatched b 650 MiB and 1 cpu", "acquired b 600 MiB and 1 cpu",
		"released b 600 MiB and 1 cpu",
	}
	if g := rec.lines(); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	if st := p.State(); st.Queued != 0 || st.Running != 0 || !st.Used.IsZero() {
		t.Fatalf("end state %+v", st)
	}
}

func TestJobsCap(t *testing.T) {
	p := New(Config{Total: Amount{8 * gib, 8}, Jobs: 1})
	a := admit(t, p, "a", nil)
	got := make(chan *File)
	go func() {
		f, _ := p.Admit(context.Background(), "b", nil)
		got <- f
	}()
	eventually(t, "b waits", func() bool { return p.State().Running == 1 })
	select {
	case <-got:
		t.Fatal("-j 1 admitted a second file")
	default:
	}
	a.Done()
	(<-got).Done()
}

func TestPressureThrottlesOnlyNewDispatch(t *testing.T) {
	rec := &recorder{}
	var mu sync.Mutex
	pressure := 80.0
	p := New(Config{Total: Amount{8 * gib, 8}, Observer: rec, PSIThreshold: 50,
		Pressure: func() (float64, bool) { mu.Lock(); defer mu.Unlock(); return pressure, true }})
	// Nothing in flight: outside pressure cannot stall the run.
	a := admit(t, p, "a", nil)
	// Running files are untouched: a's VM is granted under pressure.
	h, err := a.Acquire(context.Background(), "vm `x`", VMCharge(mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *File)
	go func() {
		f, _ := p.Admit(context.Background(), "b", nil)
		got <- f
	}()
	eventually(t, "b throttled", func() bool { return len(rec.lines()) == 2 })
	if l := rec.lines()[1]; l != "blocked b 50 MiB and 0 cpus psi_pressure" {
		t.Fatalf("blocked event %q", l)
	}
	mu.Lock()
	pressure = 10
	mu.Unlock()
	b := <-got // read again within the poll interval
	h.Release()
	a.Done()
	b.Done()
}

func TestParkedRequestServedAndCancelled(t *testing.T) {
	p := New(Config{Total: Amount{gib, 2}})
	a := admit(t, p, "a", nil)
	b := admit(t, p, "b", nil)
	ha, err := a.Acquire(context.Background(), "vm `a1`", VMCharge(500*mib, 1))
	if err != nil {
		t.Fatal(err)
	}
	// b's request does not fit while a's VM runs, and a is not parked, so
	// this is no deadlock: it waits.
	type res struct {
		h   *Hold
		err error
	}
	done := make(chan res)
	go func() {
		h, err := b.Acquire(context.Background(), "vm `b1`", VMCharge(500*mib, 1))
		done <- res{h, err}
	}()
	eventually(t, "b parked", func() bool { return p.State().Parked == 1 })
	// The queue head waits behind a parked request even if it would fit.
	admitted := make(chan *File)
	go func() {
		f, _ := p.Admit(context.Background(), "c", nil)
		admitted <- f
	}()
	eventually(t, "b has waited", func() bool { return b.Parked() > 0 })
	ha.Release()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := <-admitted
	if p.State().Parked != 0 || b.Parked() == 0 {
		t.Fatalf("state %+v parked %v", p.State(), b.Parked())
	}
	// A cancelled wait leaves nothing parked.
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		_, err := c.Acquire(ctx, "vm `c1`", VMCharge(600*mib, 1))
		done <- res{nil, err}
	}()
	eventually(t, "c parked", func() bool { return p.State().Parked == 1 })
	cancel(errors.New("file timed out after 1s"))
	if r := <-done; r.err == nil || !strings.Contains(r.err.Error(), "file timed out after 1s") {
		t.Fatalf("cancelled wait: %v", r.err)
	}
	if p.State().Parked != 0 {
		t.Fatal("a cancelled request stayed parked")
	}
	r.h.Release()
	for _, f := range []*File{a, b, c} {
		f.Done()
	}
}

func TestDeadlockFailsTheClosingRequest(t *testing.T) {
	p := New(Config{Total: Amount{gib, 4}})
	a := admit(t, p, "a", nil)
	b := admit(t, p, "b", nil)
	ha, _ := a.Acquire(context.Background(), "vm `a1`", VMCharge(256*mib, 1))
	hb, _ := b.Acquire(context.Background(), "vm `b1`", VMCharge(256*mib, 1))
	errA := make(chan error)
	var ha2 *Hold
	go func() {
		var err error
		ha2, err = a.Acquire(context.Background(), "vm `a2`", VMCharge(256*mib, 1))
		errA <- err
	}()
	eventually(t, "a parked", func() bool { return p.State().Parked == 1 })
	_, err := b.Acquire(context.Background(), "vm `b2`", VMCharge(256*mib, 1))
	want := "pool deadlock: 2 files hold 812 MiB and 2 cpus of 1 GiB and 4 cpus and all are waiting for more; 212 MiB and 2 cpus free fits none of the 2 waiting requests (this one needs 356 MiB and 1 cpu). Declare the file's peak with provium:claim({memory = …, cpus = …}) so it is reserved whole at dispatch"
	if err == nil || err.Error() != want || !IsDeadlock(err) {
		t.Fatalf("deadlock error:\n got %v\nwant %s", err, want)
	}
	// b's test fails and its scope goes: a proceeds.
	hb.Release()
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	ha.Release()
	ha2.Release()
	a.Done()
	b.Done()
}

func TestDeadlockOfOneFileAndAtDone(t *testing.T) {
	p := New(Config{Total: Amount{gib, 4}})
	a := admit(t, p, "a", nil)
	h, _ := a.Acquire(context.Background(), "vm `a1`", VMCharge(512*mib, 1))
	if _, err := a.Acquire(context.Background(), "vm `a2`", VMCharge(512*mib, 1)); !IsDeadlock(err) {
		t.Fatalf("a lone file waiting on itself: %v", err)
	}
	// b parks behind a, which is running; when a ends without releasing
	// enough... it releases everything, so b is served, not failed.
	b := admit(t, p, "b", nil)
	errB := make(chan error)
	go func() {
		h2, err := b.Acquire(context.Background(), "vm `b1`", VMCharge(800*mib, 1))
		h2.Release()
		errB <- err
	}()
	eventually(t, "b parked", func() bool { return p.State().Parked == 1 })
	h.Release()
	a.Done()
	if err := <-errB; err != nil {
		t.Fatal(err)
	}
	b.Done()
}

func TestGateWaitCountsAsParked(t *testing.T) {
	p := New(Config{Total: Amount{gib, 4}})
	a := admit(t, p, "a", nil)
	b := admit(t, p, "b", nil)
	h, _ := a.Acquire(context.Background(), "vm `a1`", VMCharge(512*mib, 1))
	end := b.WaitGate() // b waits for a's fixture build
	if _, err := a.Acquire(context.Background(), "vm `a2`", VMCharge(512*mib, 1)); !IsDeadlock(err) {
		t.Fatalf("a parks while b waits on a's build: %v", err)
	}
	end()
	end()
	if b.Parked() == 0 {
		t.Fatal("the gate wait was not counted")
	}
	h.Release()
	a.Done()
	b.Done()
}

func TestClaimResize(t *testing.T) {
	rec := &recorder{}
	p := New(Config{Total: Amount{2 * gib, 4}, Observer: rec})
	f := admit(t, p, "a", &Amount{gib, 2})
	// Confirming the declared amount changes nothing.
	if err := f.Claim(context.Background(), Amount{gib, 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.Claim(context.Background(), Amount{512 * mib, 1}); err != nil {
		t.Fatal(err)
	}
	if st := p.State(); st.Used != (Amount{562 * mib, 1}) || st.Reserved != st.Used {
		t.Fatalf("after shrink %+v", st)
	}
	f.Done()

	// An unclaimed file's running VMs move into a later claim.
	g := admit(t, p, "b", nil)
	h, _ := g.Acquire(context.Background(), "vm `x`", VMCharge(256*mib, 1))
	if err := g.Claim(context.Background(), Amount{gib, 2}); err != nil {
		t.Fatal(err)
	}
	if st := p.State(); st.Used != (Amount{gib + 50*mib, 2}) || st.InUse != (Amount{356 * mib, 1}) {
		t.Fatalf("after claim %+v", st)
	}
	h.Release() // back to the claim, not the pool
	if st := p.State(); st.Used != (Amount{gib + 50*mib, 2}) || !st.InUse.IsZero() {
		t.Fatalf("after release %+v", st)
	}
	g.Done()
	// A resize is a released/acquired pair (30-runtime.md B3).
	want := []string{
		"dispatched a 1.05 GiB and 2 cpus", "acquired a 1 GiB and 2 cpus",
		"released a 1 GiB and 2 cpus", "acquired a 512 MiB and 1 cpu",
		"released a 512 MiB and 1 cpu",
		"dispatched b 50 MiB and 0 cpus", "acquired b 1 GiB and 2 cpus",
		"released b 1 GiB and 2 cpus",
	}
	if got := rec.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s", strings.Join(got, "\n"))
	}
}

func TestBatchDrawsWhole(t *testing.T) {
	p := New(Config{Total: Amount{2 * gib, 4}})
	f := admit(t, p, "a", nil)
	batch, err := f.Acquire(context.Background(), "lab:boot of 3 VMs", VMCharge(3*256*mib+200*mib, 3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithBatch(context.Background(), batch)
	var vms []*Hold
	for i := 0; i < 2; i++ {
		h, err := f.Charge(ctx, "vm", VMCharge(256*mib, 1))
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, h)
	}
	if left := batch.Amount(); left != VMCharge(256*mib, 1) {
		t.Fatalf("batch left %+v", left)
	}
	batch.Release() // the third VM never started
	if st := p.State(); st.Used != (Amount{50*mib + 2*356*mib, 2}) {
		t.Fatalf("after batch %+v", st)
	}
	for _, h := range vms {
		h.Release()
	}
	f.Done()
	if st := p.State(); !st.Used.IsZero() || !st.InUse.IsZero() {
		t.Fatalf("end %+v", st)
	}
}
