package cli

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/coverage"
	"github.com/provium/provium/internal/events"
)

// readEvents decodes a whole stream.
func readEvents(t *testing.T, b []byte) []events.Event {
	t.Helper()
	r := events.NewReader(bytes.NewReader(b))
	var out []events.Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("event %d: %v", len(out), err)
		}
		out = append(out, ev)
	}
}

// checkOrdering asserts the C4 guarantees on one run's events.
func checkOrdering(t *testing.T, evs []events.Event) {
	t.Helper()
	var last int64
	firstDispatch, lastDiscovered, firstPool := -1, -1, -1
	completed := map[string]bool{}
	dispatched := map[string]bool{}
	openTest := map[string]string{} // path → running test
	vms := map[string]int{}         // file\x00vm → spawned-shutdown balance
	for i, ev := range evs {
		if ev.TS < last {
			t.Errorf("event %d (%s): ts went back", i, ev.Kind)
		}
		last = ev.TS
		if ev.Payload == nil {
			t.Errorf("event %d: unknown kind %q", i, ev.Kind)
			continue
		}
		after := func(path string) {
			if completed[path] {
				t.Errorf("event %d (%s) for %s after its file_completed", i, ev.Kind, path)
			}
			if !dispatched[path] {
				t.Errorf("event %d (%s) for %s before its file_dispatched", i, ev.Kind, path)
			}
		}
		switch p := ev.Payload.(type) {
		case events.FileDiscovered:
			lastDiscovered = i
		case events.FileDispatched:
			if firstDispatch < 0 {
				firstDispatch = i
			}
			dispatched[p.Path] = true
		case events.PoolState:
			if firstPool < 0 {
				firstPool = i
			}
		case events.FileCompleted:
			after(p.Path)
			if openTest[p.Path] != "" {
				t.Errorf("%s completed while test %q has no outcome", p.Path, openTest[p.Path])
			}
			for k, n := range vms {
				if strings.HasPrefix(k, p.Path+"\x00") && n != 0 {
					t.Errorf("%s completed with vm %q still up", p.Path, k)
				}
			}
			completed[p.Path] = true
		case events.TestStarted:
			after(p.Path)
			if openTest[p.Path] != "" {
				t.Errorf("test %q started inside %q", p.Name, openTest[p.Path])
			}
			openTest[p.Path] = p.Name
		case events.TestPassed:
			after(p.Path)
			if openTest[p.Path] != p.Name {
				t.Errorf("test_passed %q without its test_started", p.Name)
			}
			openTest[p.Path] = ""
		case events.TestFailed:
			after(p.Path)
			if openTest[p.Path] != p.Name {
				t.Errorf("test_failed %q without its test_started", p.Name)
			}
			openTest[p.Path] = ""
		case events.TestSkipped:
			after(p.Path)
			if openTest[p.Path] == p.Name {
				openTest[p.Path] = ""
			} else if openTest[p.Path] != "" {
				t.Errorf("test_skipped %q inside %q", p.Name, openTest[p.Path])
			}
		case events.VMSpawned:
			after(p.File)
			vms[p.File+"\x00"+p.VMName]++
		case events.VMShutdown:
			after(p.File)
			vms[p.File+"\x00"+p.VMName]--
			if vms[p.File+"\x00"+p.VMName] < 0 {
				t.Errorf("vm_shutdown of %s/%s without vm_spawned", p.File, p.VMName)
			}
		}
	}
	if firstDispatch >= 0 && lastDiscovered > firstDispatch {
		t.Errorf("a file_discovered (%d) follows the first file_dispatched (%d)", lastDiscovered, firstDispatch)
	}
	if firstPool < lastDiscovered {
		t.Errorf("first pool_state (%d) precedes the last file_discovered (%d)", firstPool, lastDiscovered)
	}
	if n := len(evs); n > 0 {
		if _, ok := evs[n-1].Payload.(events.PoolState); !ok {
			t.Errorf("last event is %s, want the final pool_state", evs[n-1].Kind)
		}
	}
	for path := range dispatched {
		if !completed[path] {
			t.Errorf("%s dispatched but never completed", path)
		}
	}
}

// The acceptance run: a passing, a failing and a timed-out file, read
// three ways (--save-events, a reading socket client, a client that never
// reads), checked kind by kind, in order, and against provium-coverage.
func TestEventStreamOfARealRun(t *testing.T) {
	suite := map[string]string{
		"pass.test.lua": `
provium:claim({memory = "700M", cpus = 1})
local a = provium:vm("a", "linux", {memory = "256M"}):boot()
test("passes", {spec = "§1"}, function(t)
  t:assert_eq(a:run("echo ok").stdout, "ok\n")
end)
test("skipped by meta", {skip = "not today", spec = {"§1", "§2"}}, function(t) end)
test("skips itself", {spec = "§2"}, function(t) t:skip("inside") end)
`,
		"fail.test.lua": `
test("fails", {spec = "§2"}, function(t)
  local c = provium:vm("c", "linux", {memory = "256M"}):boot()
  c:run("echo CONSOLE-MARK > /dev/console")
  t:assert_eq(1, 2)
end)
`,
		"hang.test.lua": `
local h = provium:vm("h", "linux", {memory = "256M"}):boot()
test("hangs", {timeout = 5}, function(t)
  h:run("mkfifo /tmp/fifo-nobody-writes")
  h:run("cat /tmp/fifo-nobody-writes")
end)
test("after the hang", function(t) end)
`,
	}
	// The example suite rides along (its files boot at top level).
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.test.lua"))
	if len(examples) == 0 {
		t.Fatal("no examples found")
	}
	for _, e := range examples {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		suite["examples/"+filepath.Base(e)] = string(b)
	}
	in, _ := vmSuite(t, suite)
	dir := in.cwd
	// A loaded machine boots slowly: give the agent time.
	cfg, _ := os.ReadFile(filepath.Join(dir, "provium.toml"))
	os.WriteFile(filepath.Join(dir, "provium.toml"), append(cfg, "agent_boot_timeout = 240\n"...), 0o644)
	tracePath := filepath.Join(dir, "trace.json")
	sock := filepath.Join(in.vars["XDG_RUNTIME_DIR"], "ev.sock")
	saved := filepath.Join(dir, "events.bin")

	// The socket is up once the run started; clients connect before any
	// file is discovered by racing the listener (the run waits on nothing).
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := in.exec("--save-events", saved, "--events-socket", sock, "--trace", tracePath, "--json", "--timeout", "20m", ".")
		done <- result{code, out, errs}
	}()
	var reader, stalled net.Conn
	deadline := time.Now().Add(30 * time.Second)
	for reader == nil {
		if c, err := net.Dial("unix", sock); err == nil {
			reader = c
		} else if time.Now().After(deadline) {
			t.Fatalf("socket never came up: %v", err)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	stalled, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	var got bytes.Buffer
	readDone := make(chan struct{})
	go func() { io.Copy(&got, reader); close(readDone) }()

	res := <-done
	<-readDone
	if res.code != ExitFailed {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, b)
	checkOrdering(t, evs)
	// The socket client connected early; it saw a suffix of the file.
	if !bytes.HasSuffix(b, got.Bytes()) || got.Len() == 0 {
		t.Errorf("socket client got %d bytes that are not a suffix of the saved %d", got.Len(), len(b))
	}

	jsonStatus := map[string]string{}
	for _, f := range parseJSONLines(t, res.stdout) {
		switch {
		case f.Timeout == "timed_out":
			jsonStatus[f.Path] = "timed_out"
		case f.Passed:
			jsonStatus[f.Path] = "passed"
		default:
			jsonStatus[f.Path] = "failed"
		}
	}
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		switch p := ev.Payload.(type) {
		case events.FileDiscovered:
			if p.Path == "pass.test.lua" && (p.DeclaredClaim == nil || p.DeclaredClaim.MemoryBytes != 700<<20 || p.DeclaredClaim.CPUs != 1) {
				t.Errorf("pass.test.lua declared_claim = %+v", p.DeclaredClaim)
			}
		case events.FileCompleted:
			// Whatever a loaded machine made of each file (a boot may
			// time out), the event agrees with the report.
			want := jsonStatus[p.Path]
			if p.Status != want || p.DurationNs == 0 {
				t.Errorf("file_completed %+v, want status %s", p, want)
			}
		case events.TestFailed:
			reached := strings.Contains(p.Reason, "assert_eq failed") || strings.Contains(p.Reason, "test timed out after")
			if !reached {
				// The VM did not boot on this (loaded) machine: the
				// failure is real but not the one under test.
				t.Logf("test %q failed before its point: %s", p.Name, p.Reason)
				continue
			}
			if p.Name == "fails" && (!strings.Contains(p.ConsoleExcerpt, "--- console c ---") || !strings.Contains(p.ConsoleExcerpt, "CONSOLE-MARK")) {
				t.Errorf("console_excerpt of `fails`: %q", p.ConsoleExcerpt)
			}
			if p.Name == "fails" && p.Meta["spec"] != "§2" {
				t.Errorf("meta of `fails` = %v", p.Meta)
			}
			if p.Name == "hangs" {
				// Diagnose on timeout: the guest's processes and task dump,
				// taken before the hanging command was cancelled.
				for _, want := range []string{"test timed out after 5s\n--- h (diagnosis) ---", "cat /tmp/fifo-nobody-writes", "sysrq: Show Blocked State"} {
					if !strings.Contains(p.Reason, want) {
						t.Errorf("reason of `hangs` lacks %q:\n%s", want, p.Reason)
					}
				}
				if !strings.Contains(p.ConsoleExcerpt, "--- console h (diagnosis) ---") {
					t.Errorf("console_excerpt of `hangs` lacks the diagnosis:\n%s", p.ConsoleExcerpt)
				}
			}
		case events.TestSkipped:
			if p.Name == "skipped by meta" && p.Reason != "skipped: not today" {
				t.Errorf("skip reason %q", p.Reason)
			}
		case events.VMSpawned:
			if p.Profile != "linux" || p.MemoryBytes == 0 {
				t.Errorf("vm_spawned %+v", p)
			}
		case events.VMShutdown:
			if p.DurationNs == 0 {
				t.Errorf("vm_shutdown %+v", p)
			}
		}
	}
	for _, k := range []string{events.KindFileDiscovered, events.KindFileDispatched, events.KindFileBlocked, events.KindFileCompleted,
		events.KindTestStarted, events.KindTestSkipped, events.KindTestPassed, events.KindTestFailed,
		events.KindVMSpawned, events.KindVMShutdown, events.KindPoolState, events.KindClaimAcquired, events.KindClaimReleased} {
		if kinds[k] == 0 {
			t.Errorf("no %s event", k)
		}
	}
	if kinds[events.KindVMSpawned] != kinds[events.KindVMShutdown] {
		t.Errorf("%d vm_spawned, %d vm_shutdown", kinds[events.KindVMSpawned], kinds[events.KindVMShutdown])
	}

	// provium-coverage reproduces the run's counts (from --json).
	var passed, failed, skipped int
	for _, f := range parseJSONLines(t, res.stdout) {
		for _, tc := range f.Tests {
			switch tc.Status {
			case "passed":
				passed++
			case "failed":
				failed++
			case "skipped":
				skipped++
			}
		}
	}
	var out, errb bytes.Buffer
	if code := coverage.Main([]string{"--from", saved, "--json"}, nil, &out, &errb); code != 0 {
		t.Fatalf("provium-coverage exit %d: %s", code, errb.String())
	}
	wantTotals := `"totals":{"name":"total","passed":` + strconv.Itoa(passed) + `,"failed":` + strconv.Itoa(failed) + `,"skipped":` + strconv.Itoa(skipped)
	if !strings.Contains(out.String(), wantTotals) {
		t.Errorf("coverage %s\nwant %s", out.String(), wantTotals)
	}
	checkTrace(t, tracePath)
}
