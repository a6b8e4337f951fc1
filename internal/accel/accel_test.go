package accel

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The probe re-executes the test binary as its child.
	MaybeRunProbeChild()
	os.Exit(m.Run())
}

func writeCPUInfo(t *testing.T, flags string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cpuinfo")
	content := "processor\t: 0\nflags\t\t: " + flags + "\n\nprocessor\t: 1\nflags\t\t: " + flags + "\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHasVirtExtensions(t *testing.T) {
	cases := map[string]bool{
		"flags\t: fpu vme de pse vmx sse":    true,
		"flags\t: fpu svm lm":                true,
		"flags\t: fpu vmx_ept sse":           false,
		"vmx flags\t: vnmi preemption_timer": false,
		"flags\t: fpu sse":                   false,
	}
	for in, want := range cases {
		if got := hasVirtExtensions([]byte(in + "\n")); got != want {
			t.Errorf("hasVirtExtensions(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRunChecksReasons(t *testing.T) {
	withVMX := writeCPUInfo(t, "fpu vmx sse")
	without := writeCPUInfo(t, "fpu sse")
	cases := []struct {
		name, dev, cpuinfo string
		want               ReasonCode
	}{
		{"no device", filepath.Join(t.TempDir(), "kvm"), withVMX, ReasonNoDevice},
		{"no vmx/svm", "/dev/null", without, ReasonNoVirtExt},
		// /dev/null opens but answers KVM ioctls with ENOTTY.
		{"ioctl error", "/dev/null", withVMX, ReasonIoctl},
	}
	for _, c := range cases {
		r := runChecks(io.Discard, c.dev, c.cpuinfo)
		if r.Usable || r.Reason.Code != c.want {
			t.Errorf("%s: got %+v, want reason %s", c.name, r, c.want)
		}
		if r.Reason.Text == "" || r.Reason.Fix == "" {
			t.Errorf("%s: reason lacks text or fix: %+v", c.name, r.Reason)
		}
	}
}

func TestClassifyOpenError(t *testing.T) {
	r := classifyOpenError("/dev/kvm", &os.PathError{Op: "open", Path: "/dev/kvm", Err: unix.EACCES})
	if r.Code != ReasonPermission || r.Text != "/dev/kvm: permission denied" {
		t.Errorf("EACCES: got %+v", r)
	}
	r = classifyOpenError("/dev/kvm", unix.ENOENT)
	if r.Code != ReasonNoDevice || r.Text != "/dev/kvm does not exist" {
		t.Errorf("ENOENT: got %+v", r)
	}
}

func TestTimeoutReasonText(t *testing.T) {
	got := reasonTimeout("KVM_CREATE_VM", DefaultTimeout).Text
	if want := "KVM_CREATE_VM did not answer within 2s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A FIFO without a writer blocks the child's read of "cpuinfo" forever, the
// same way a broken KVM blocks an ioctl: the parent must give up and say
// which step hung.
func TestProbeAbandonsHungChild(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "cpuinfo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := Probe(context.Background(), Options{Device: "/dev/null", CPUInfo: fifo, Timeout: 300 * time.Millisecond})
	if r.Usable || r.Reason.Code != ReasonTimeout {
		t.Fatalf("got %+v, want a timeout", r)
	}
	if want := "reading " + fifo + " did not answer within 300ms"; r.Reason.Text != want {
		t.Errorf("got %q, want %q", r.Reason.Text, want)
	}
}

func TestProbeThroughChild(t *testing.T) {
	r := Probe(context.Background(), Options{Device: "/dev/null", CPUInfo: writeCPUInfo(t, "vmx")})
	if r.Usable || r.Reason.Code != ReasonIoctl || !strings.Contains(r.Reason.Text, "KVM_GET_API_VERSION") {
		t.Errorf("got %+v, want the child's ioctl error", r)
	}
}

func TestProbeCache(t *testing.T) {
	dir := t.TempDir()
	opts := Options{CacheDir: dir, Device: "/dev/null", CPUInfo: writeCPUInfo(t, "fpu")}
	first := Probe(context.Background(), opts)
	if first.Cached {
		t.Fatal("first probe claims to be cached")
	}
	second := Probe(context.Background(), opts)
	if !second.Cached || second.Reason != first.Reason || second.Usable != first.Usable {
		t.Fatalf("second probe: got %+v, want cached copy of %+v", second, first)
	}
	// A different situation (here: another cpuinfo) must not reuse the verdict.
	opts.CPUInfo = writeCPUInfo(t, "vmx")
	third := Probe(context.Background(), opts)
	if third.Cached || third.Reason.Code != ReasonIoctl {
		t.Fatalf("third probe: got %+v, want a fresh ioctl verdict", third)
	}
}

// The real /dev/kvm of this machine: whatever it says, it must answer.
func TestProbeThisMachine(t *testing.T) {
	start := time.Now()
	r := Probe(context.Background(), Options{})
	t.Logf("probe: usable=%v reason=%q (%s)", r.Usable, r.Reason.Text, time.Since(start))
	if !r.Usable && (r.Reason.Code == ReasonNone || r.Reason.Text == "" || r.Reason.Fix == "") {
		t.Errorf("unusable without a reason: %+v", r)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	missing := Options{Device: filepath.Join(t.TempDir(), "kvm")}

	d, err := Resolve(ctx, "tcg", "--accel tcg", missing)
	if err != nil || d.Accel != TCG || d.Notice != "" || d.Probe != nil {
		t.Errorf("tcg: got %+v, %v", d, err)
	}

	d, err = Resolve(ctx, "auto", "default", missing)
	want := "provium: KVM unusable (" + missing.Device + " does not exist); using TCG (guests run slower)"
	if err != nil || d.Accel != TCG || d.Notice != want {
		t.Errorf("auto: got %+v, %v; want notice %q", d, err, want)
	}

	_, err = Resolve(ctx, "kvm", "--accel kvm", missing)
	var ue *UnusableError
	if !errors.As(err, &ue) {
		t.Fatalf("kvm: got %v, want *UnusableError", err)
	}
	if want := "accel: KVM requested (--accel kvm) but unusable: " + missing.Device + " does not exist"; err.Error() != want {
		t.Errorf("kvm: got %q, want %q", err.Error(), want)
	}
	if ue.Fix() == "" {
		t.Error("kvm: no fix")
	}

	if _, err := Resolve(ctx, "fast", "x", missing); err == nil || err.Error() != `accel: unknown mode "fast" (want auto, kvm or tcg)` {
		t.Errorf("bad mode: got %v", err)
	}
}

// TestDecisionWhy: a decision explains itself for JUnit's accel_reason and
// doctor: what was requested, where, and what the probe found.
func TestDecisionWhy(t *testing.T) {
	ctx := context.Background()
	missing := Options{Device: filepath.Join(t.TempDir(), "kvm")}
	d, err := Resolve(ctx, "tcg", "--accel tcg", missing)
	if err != nil || d.Why() != "tcg requested (--accel tcg)" {
		t.Errorf("tcg: %q, %v", d.Why(), err)
	}
	d, err = Resolve(ctx, "auto", "default", missing)
	if want := "auto (default): KVM unusable (" + missing.Device + " does not exist)"; err != nil || d.Why() != want {
		t.Errorf("auto: %q, %v; want %q", d.Why(), err, want)
	}
	usable := Decision{Accel: KVM, Requested: Auto, Source: "default", Probe: &Result{Usable: true}}
	if got := usable.Why(); got != "auto (default): KVM usable" {
		t.Errorf("auto usable: %q", got)
	}
	usable.Requested, usable.Source = KVM, "PROVIUM_ACCEL=kvm"
	if got := usable.Why(); got != "kvm requested (PROVIUM_ACCEL=kvm): KVM usable" {
		t.Errorf("kvm usable: %q", got)
	}
}
