package luaapi_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// runGuestFile runs a Lua test file against the default image, with a real
// guest backend, and returns the outcome.
func runGuestFile(t *testing.T, name string) *result.File {
	res, _ := runGuestFileIn(t, name)
	return res
}

// wantTests fails t unless the file ran exactly n tests: a file cut
// short runs fewer.
func wantTests(t *testing.T, res *result.File, n int) {
	t.Helper()
	if len(res.Tests) != n {
		t.Fatalf("%d tests ran, want %d", len(res.Tests), n)
	}
}

// runGuestFileIn is runGuestFile that also returns the scratch root the
// file's VMs ran under.
func runGuestFileIn(t *testing.T, name string) (*result.File, string) {
	t.Helper()
	return runGuestFileWith(t, guesttest.Config(t), name)
}

// runGuestFileWith is runGuestFileIn under the configuration cfg.
func runGuestFileWith(t *testing.T, cfg *config.Config, name string) (*result.File, string) {
	t.Helper()
	scratch := guesttest.ScratchRoot(t)
	b, err := guest.New(guest.Options{Config: cfg, ScratchRoot: scratch, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path, _ := filepath.Abs(filepath.Join("testdata", name))
	f := discover.File{Display: "testdata/" + name, RootRel: name, Abs: path, Canonical: path}
	res := runner.RunFile(context.Background(), f, &runner.Options{
		Config:  cfg,
		Roots:   []string{filepath.Dir(path)},
		Backend: b.ForFile,
	})
	if res.HasChunkError {
		t.Fatalf("chunk error: %s", res.ChunkError)
	}
	for _, tr := range res.Tests {
		if tr.Status != result.Passed {
			t.Errorf("%s: %s: %s", tr.Name, tr.Status, tr.Message)
		}
	}
	return res, scratch
}

func TestLayer1OpsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "layer1.test.lua")
	if len(res.Tests) < 5 {
		t.Fatalf("only %d tests ran", len(res.Tests))
	}
}

// plainProfileConfig is the default image's configuration plus profile
// `plain`: the image's profile without its guest_os key, as every profile
// written for upstream Provium is.
func plainProfileConfig(t *testing.T) *config.Config {
	t.Helper()
	img := guesttest.Image(t)
	plain := strings.Replace(img.Profile, "[profiles.linux]", "[profiles.plain]", 1)
	plain = strings.Replace(plain, "guest_os = \"linux\"\n", "", 1)
	if strings.Contains(plain, "guest_os") || !strings.Contains(plain, "[profiles.plain]") {
		t.Fatalf("could not derive a profile without guest_os from:\n%s", img.Profile)
	}
	cfg := guesttest.ConfigText(t, img.Profile+"\n"+plain)
	if p, err := cfg.Profile("plain"); err != nil || p.GuestOSNamed {
		t.Fatalf("profile plain: %+v, %v", p, err)
	}
	return cfg
}

// A guest of a profile without guest_os that reboots itself is shut down,
// as upstream's -no-reboot does (the suite depends on it); vm:reset() and
// snapshots keep working, and guest_os = "linux" keeps ours.
func TestGuestRebootShutsDownWithoutGuestOS(t *testing.T) {
	res, _ := runGuestFileWith(t, plainProfileConfig(t), "reboot_plain.test.lua")
	wantTests(t, res, 4)
}

func TestLifecycleOnARealGuest(t *testing.T) {
	_, scratch := runGuestFileIn(t, "lifecycle.test.lua")
	assertNoQEMULeft(t, scratch)
}

// assertNoQEMULeft fails t if a QEMU of ours (one using scratch) still runs.
func assertNoQEMULeft(t *testing.T, scratch string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), "qemu-system") && strings.Contains(string(cmd), scratch) {
			t.Errorf("QEMU left running: pid %s", e.Name())
		}
	}
}

func TestProcessesWorkersSyscallsOnARealGuest(t *testing.T) {
	before := runtime.NumGoroutine()
	res := runGuestFile(t, "async.test.lua")
	// Every VM, session, process, stream and worker goroutine is gone once
	// the file's scope closed (allow a moment for them to observe it).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines grew from %d to %d:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	logTests(t, res)
}

func TestSingleThreadedWorkersOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "worker.test.lua")
	wantTests(t, res, 7)
}

// An image without provium-worker beside the agent still gets workers.
func TestWorkerWithoutExecutorInTheImage(t *testing.T) {
	res := runGuestFile(t, "worker_bare.test.lua")
	wantTests(t, res, 1)
}

// vm:syscall runs on a thread that ends with the call, a batch on one
// thread for all its items (as upstream's agent, which real suites expect).
func TestAgentSyscallThreadsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "callthreads.test.lua")
	wantTests(t, res, 6)
}

func TestCorpusSemanticsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "corpus.test.lua")
	wantTests(t, res, 4)
}

func TestInFlightOpsFailWhenTheGuestGoesOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "inflight.test.lua")
	wantTests(t, res, 4)
	logTests(t, res)
}

func TestAgentCommandLineOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "agentcli.test.lua")
	wantTests(t, res, 2)
	logTests(t, res)
}

// logTests shows what the file's tests logged (t:log), e.g. timings.
func logTests(t *testing.T, res *result.File) {
	t.Helper()
	for _, tr := range res.Tests {
		for _, l := range tr.Log {
			t.Logf("%s: %s", tr.Name, l)
		}
	}
}

func TestPowerButtonOnARealGuest(t *testing.T) {
	_, scratch := runGuestFileIn(t, "power_button.test.lua")
	assertNoQEMULeft(t, scratch)
}

// worker:kill()/join() end the worker process as upstream's do, and the
// worker has the signal dispositions of upstream's (Rust) worker.
func TestWorkerLifeAndSignalsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "worker_life.test.lua")
	wantTests(t, res, 5)
}

// vm:write_file and push_file create a file with one open carrying its
// mode and chmod only where the umask cleared bits (watched with inotify).
func TestWriteFileCreatesWithoutChmodOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "write_mode.test.lua")
	wantTests(t, res, 3)
}
