package guest

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
)

func newBackend(t *testing.T, cfg *config.Config) *Backend {
	t.Helper()
	b, err := New(Options{Config: cfg, ScratchRoot: guesttest.ScratchRoot(t), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBootRunAndStop(t *testing.T) {
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	exited := make(chan bool, 1)
	ctx := context.Background()
	m, err := b.ForFile("a.test.lua").Start(ctx, lab.BootSpec{Name: "a", Path: "a", Profile: "linux",
		Opts:   lab.BootOpts{Files: []lab.FileSpec{{Path: "/etc/greeting", Content: "hi", Mode: 0o600}}},
		OnExit: func(p bool) { exited <- p }})
	if err != nil {
		t.Fatal(err)
	}
	g := m.(*Machine)
	a, err := g.Agent()
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Exec(ctx, proto.ExecReq{Cmd: "cat /etc/greeting; hostname", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "hia\n" || res.ExitCode != 0 {
		t.Fatalf("exec = %q (exit %d, stderr %q)", got, res.ExitCode, res.Stderr)
	}
	dir := g.VMM().Config().Scratch
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("scratch dir %s left behind", dir)
	}
	select {
	case <-exited:
		t.Fatal("a requested stop was reported as an exit")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestGuestPoweroffIsReported(t *testing.T) {
	b := newBackend(t, guesttest.Config(t))
	exited := make(chan bool, 1)
	ctx := context.Background()
	m, err := b.ForFile("a.test.lua").Start(ctx, lab.BootSpec{Name: "p", Path: "p", Profile: "linux", OnExit: func(p bool) { exited <- p }})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.(*Machine).Agent()
	_, _ = a.Exec(ctx, proto.ExecReq{Cmd: "sync; poweroff -f", Shell: true})
	select {
	case p := <-exited:
		if !p {
			t.Fatal("guest poweroff reported as a crash")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("guest poweroff not reported")
	}
}

func TestMissingKernelAndSilentAgent(t *testing.T) {
	cfg := guesttest.Config(t)
	cfg.Profiles["broken"] = &config.Profile{Name: "broken", Kernel: "/nonexistent/vmlinux", Cmdline: "console=ttyS0", InjectAgent: true, KernelBoot: "auto", Machine: "q35"}
	b := newBackend(t, cfg)
	_, err := b.ForFile("f").Start(context.Background(), lab.BootSpec{Name: "x", Path: "x", Profile: "broken"})
	if err == nil || !strings.Contains(err.Error(), "profile `broken`") || !strings.Contains(err.Error(), "/nonexistent/vmlinux") {
		t.Fatalf("err = %v", err)
	}
	// inject_agent = false with an initrd whose init never starts an agent.
	silent := *cfg.Profiles["linux"]
	silent.Name, silent.InjectAgent = "silent", false
	cfg.Profiles["silent"] = &silent
	// Long enough for the init to print on a loaded machine (TCG boots
	// were measured at 55 s there; the init runs well before the agent
	// would).
	short := 40 * time.Second
	start := time.Now()
	idle := lab.FileSpec{Path: "/init", Content: "#!/bin/sh\necho silent-init-running\nwhile true; do sleep 1; done\n", Mode: 0o755}
	_, err = b.ForFile("f").Start(context.Background(), lab.BootSpec{Name: "s", Path: "s", Profile: "silent",
		Opts: lab.BootOpts{AgentTimeout: &short, Files: []lab.FileSpec{idle}}})
	if err == nil || !strings.Contains(err.Error(), "agent did not answer within 40s") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 100*time.Second {
		t.Fatalf("agent timeout not honoured: %s", time.Since(start))
	}
	if !strings.Contains(err.Error(), "silent-init-running") {
		t.Fatalf("no console detail in %v", err)
	}
	entries, _ := os.ReadDir(b.runDir.Path)
	if len(entries) != 0 {
		t.Fatalf("scratch left behind: %v", entries)
	}
}

// TestSeededVirtioRNG checks that the guest's hardware RNG is fed from the
// seed's stream: bytes read from /dev/hwrng occur in that stream and not in
// another seed's, also past the bytes the boot's sync lined up (a second
// read takes the driver's next block).
func TestSeededVirtioRNG(t *testing.T) {
	b := newBackend(t, guesttest.Config(t))
	ctx := context.Background()
	seed := uint64(42)
	m, err := b.ForFile("f").Start(ctx, lab.BootSpec{Name: "rng", Path: "rng", Profile: "linux", Opts: lab.BootOpts{RNGSeed: &seed}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	a, _ := m.(*Machine).Agent()
	stream := func(s uint64) []byte {
		buf := make([]byte, 4<<20)
		io.ReadFull(proto.RNGStream(s), buf)
		return buf
	}
	// 56 bytes drain what the sync preloaded; the next 32 come from the
	// driver.
	for _, n := range []int{56, 32} {
		res, err := a.Exec(ctx, proto.ExecReq{Cmd: fmt.Sprintf("head -c %d /dev/hwrng", n), Shell: true})
		if err != nil || res.ExitCode != 0 || len(res.Stdout) != n {
			t.Fatalf("read hwrng: %v %+v", err, res)
		}
		off := bytes.Index(stream(seed), res.Stdout)
		if off < 0 {
			t.Fatalf("hwrng bytes %x are not from the seed's stream", res.Stdout)
		}
		t.Logf("%d hwrng bytes found at stream offset %d", n, off)
		if bytes.Contains(stream(seed+1), res.Stdout) {
			t.Fatal("hwrng bytes also occur in another seed's stream")
		}
	}
}

// TestHWRNGReproducibleAcrossVMs: two VMs with one rng_seed read the same
// first bytes from /dev/hwrng, a VM with another seed other bytes, and so
// does the second VM again after vm:reset. They are the seed's stream in
// the block at hwrngStart, which the boot's sync left in the hwrng core's
// buffer (the kernel's own hwrng thread cannot take them, whenever it
// reads).
func TestHWRNGReproducibleAcrossVMs(t *testing.T) {
	b := newBackend(t, guesttest.Config(t))
	ctx := context.Background()
	first32 := func(m *Machine) []byte {
		t.Helper()
		if err := m.HWRNGSynced(); err != nil {
			t.Fatalf("hwrng sync: %v", err)
		}
		a, _ := m.Agent()
		res, err := a.Exec(ctx, proto.ExecReq{Cmd: "head -c 32 /dev/hwrng | od -An -tx1 -v | tr -d ' \\n'", Shell: true})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("read hwrng: %v %+v", err, res)
		}
		got, err := hex.DecodeString(string(res.Stdout))
		if err != nil || len(got) != 32 {
			t.Fatalf("hwrng hex %q: %v", res.Stdout, err)
		}
		return got
	}
	boot := func(name string, seed uint64) (*Machine, func()) {
		m, err := b.ForFile("f").Start(ctx, lab.BootSpec{Name: name, Path: name, Profile: "linux", Opts: lab.BootOpts{RNGSeed: &seed}})
		if err != nil {
			t.Fatal(err)
		}
		stop := sync.OnceFunc(func() { m.Stop(ctx) })
		t.Cleanup(stop)
		return m.(*Machine), stop
	}
	ma, stopA := boot("a", 42)
	a := first32(ma)
	stopA()
	mb, stopB := boot("b", 42)
	b1 := first32(mb)
	if !bytes.Equal(a, b1) {
		t.Fatalf("one seed, two VMs: %x and %x", a, b1)
	}
	if err := mb.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if b2 := first32(mb); !bytes.Equal(a, b2) {
		t.Fatalf("after vm:reset: %x, want %x", b2, a)
	}
	stopB()
	mc, _ := boot("c", 43)
	c := first32(mc)
	if bytes.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same bytes %x", a)
	}
	// A sync in the middle of a VM's life lines it up again.
	began := time.Now()
	mc.syncHWRNG(ctx)
	t.Logf("a sync took %s", time.Since(began))
	if c2 := first32(mc); !bytes.Equal(c, c2) {
		t.Fatalf("after a second sync: %x, want %x", c2, c)
	}
	want := make([]byte, hwrngStart+proto.HWRNGPreloaded)
	io.ReadFull(proto.RNGStream(42), want)
	if !bytes.Contains(want[hwrngStart:], a) {
		t.Fatalf("seed 42's first read %x is not in its stream's block at %d: %x", a, hwrngStart, want[hwrngStart:])
	}
}

// A boot that fails carries a bounded console tail big enough for tests
// that `pcall(vm.boot, vm)` and search the error for a marker from early
// in that boot: one printed some 200 lines before the end is in it, one
// 500 lines before is beyond the bound.
func TestBootFailureCarriesAConsoleTail(t *testing.T) {
	cfg := guesttest.Config(t)
	halts := *cfg.Profiles["linux"]
	halts.Name, halts.InjectAgent = "halts", false
	cfg.Profiles["halts"] = &halts
	b := newBackend(t, cfg)
	// The guest prints its markers and filler to the console, then powers
	// off: QEMU exits before any agent answers.
	script := "#!/bin/sh\n" +
		"exec >/dev/console 2>&1\n" +
		"filler() { i=0; while [ $i -lt $1 ]; do echo \"filler line $i of $1\"; i=$((i+1)); done; }\n" +
		"echo tail-marker-beyond-bound\n" +
		"filler 300\n" +
		"echo tail-marker-early-in-boot\n" +
		"filler 200\n" +
		"echo tail-marker-last-line\n" +
		"sleep 1\n" +
		"poweroff -f\n"
	long := 180 * time.Second
	_, err := b.ForFile("f").Start(context.Background(), lab.BootSpec{Name: "h", Path: "h", Profile: "halts",
		Opts: lab.BootOpts{AgentTimeout: &long, Files: []lab.FileSpec{{Path: "/init", Content: script, Mode: 0o755}}}})
	if err == nil {
		t.Fatal("a guest that powers off booted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "QEMU exited before the agent answered") {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"tail-marker-early-in-boot", "tail-marker-last-line", "filler line 199 of 200"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "tail-marker-beyond-bound") {
		t.Errorf("the tail is not bounded to %d lines: it holds the marker 500 lines back", bootFailureTailLines)
	}
	if len(msg) > bootFailureTailBytes+4<<10 {
		t.Errorf("the error is %d bytes long", len(msg))
	}
}
