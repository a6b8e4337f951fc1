package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/sched"
)

// The pool's command-line side without guests: the overcommit clamp notice,
// the KSM line (tuned, not tuned, --no-ksm, -q) and the -v notice of a
// host without PSI.
func TestPoolFlagsAndNotices(t *testing.T) {
	dir := fakeTree(t, "a.test.lua")
	in := newInvocation(t, dir)

	code, _, errOut := in.exec("--cpu-overcommit", "12", "--mem", "1G", ".")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"provium: --cpu-overcommit 12 clamped to 8.0 (sane range 0.5–8.0)\n",
		"provium: ksm not tuned (" + in.ksm + " does not exist)\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, sched.MsgNoPSI) {
		t.Errorf("the no-PSI notice without -v:\n%s", errOut)
	}

	knobs := filepath.Join(t.TempDir(), "ksm")
	if err := os.MkdirAll(knobs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"run", "pages_to_scan", "sleep_millisecs"} {
		if err := os.WriteFile(filepath.Join(knobs, n), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.ksm = knobs
	code, _, errOut = in.exec("-v", ".")
	if code != ExitOK || strings.Count(errOut, "provium: ksm tuned (run = on, pages_to_scan = 1000, sleep_millisecs = 100)\n") != 1 {
		t.Errorf("tuned: exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(knobs, "run")); string(b) != "1\n" {
		t.Errorf("run = %q", b)
	}
	if !strings.Contains(errOut, "provium: "+sched.MsgNoPSI+"\n") {
		t.Errorf("-v lacks the no-PSI notice:\n%s", errOut)
	}
	for _, args := range [][]string{{"--no-ksm", "."}, {"-q", "."}} {
		if code, _, errOut := in.exec(args...); code != ExitOK || strings.Contains(errOut, "ksm") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, errOut)
		}
	}
}

// The pool's events without guests: a declared claim is reserved at
// dispatch, a runtime claim of another amount is a released/acquired
// pair, a file whose claim does not fit beside the running one waits for
// it (blocked with pool_full when it got there while a ran), and
// pool_state reads the pool.
func TestPoolEvents(t *testing.T) {
	dir := writeTree(t, map[string]string{
		// Declared (the scan's first literal call): 600M; run: 700M.
		"a.test.lua": `
if false then provium:claim({memory = "600M", cpus = 1}) end
provium:claim({memory = "700M", cpus = tonumber("1")})
test("x", function(t) end)`,
		"b.test.lua": `
provium:claim({memory = "600M"})
test("x", function(t) end)`,
	})
	in := newInvocation(t, dir)
	saved := filepath.Join(t.TempDir(), "events.bin")
	code, out, errOut := in.exec("--mem", "1G", "--no-ksm", "--save-events", saved, ".")
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, b)
	checkOrdering(t, evs)
	var got []string
	for _, ev := range evs {
		switch p := ev.Payload.(type) {
		case events.FileDispatched:
			got = append(got, fmt.Sprintf("dispatched %s %d/%d", p.Path, p.Reservation.MemoryBytes>>20, p.Reservation.CPUs))
		case events.FileBlocked:
			// Whether b reached the head while a ran is up to scheduling.
			if blocked := fmt.Sprintf("%s %d/%d %s", p.Path, p.WaitingFor.MemoryBytes>>20, p.WaitingFor.CPUs, p.Reason); blocked != "b.test.lua 650/0 pool_full" {
				t.Errorf("file_blocked %s", blocked)
			}
		case events.ClaimAcquired:
			got = append(got, fmt.Sprintf("acquired %s %d/%d", p.Path, p.Amount.MemoryBytes>>20, p.Amount.CPUs))
		case events.ClaimReleased:
			got = append(got, fmt.Sprintf("released %s %d/%d", p.Path, p.Amount.MemoryBytes>>20, p.Amount.CPUs))
		case events.FileCompleted:
			got = append(got, "completed "+p.Path)
		}
	}
	want := []string{
		"dispatched a.test.lua 650/1", "acquired a.test.lua 600/1",
		"released a.test.lua 600/1", "acquired a.test.lua 700/1",
		"released a.test.lua 700/1", "completed a.test.lua",
		"dispatched b.test.lua 650/0", "acquired b.test.lua 600/0",
		"released b.test.lua 600/0", "completed b.test.lua",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	last, ok := evs[len(evs)-1].Payload.(events.PoolState)
	if !ok || last.Used != (events.Resource{}) || last.Available.MemoryBytes != 1<<30 {
		t.Errorf("final pool_state %+v", evs[len(evs)-1])
	}
}
