package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// Real-guest tests of the scheduler (30-runtime.md B). Guests are small
// (256 MiB, mostly idle) and the pool is set with --mem, so the facts hold
// whatever else loads the machine; no test bounds a duration from above
// except the deadlock verdict, measured from the call that closes it.

// span is when the runner had a file: dispatch to completion.
type span struct {
	path       string
	start, end time.Time
}

// recordSpans wraps the real runner, recording each file's span.
func recordSpans(in *invocation) func() []span {
	var mu sync.Mutex
	var spans []span
	in.run = func(ctx context.Context, f runner.File, opts *runner.Options) *result.File {
		s := span{path: f.Display, start: time.Now()}
		r := defaultRunFile(ctx, f, opts)
		s.end = time.Now()
		mu.Lock()
		spans = append(spans, s)
		mu.Unlock()
		return r
	}
	return func() []span {
		mu.Lock()
		defer mu.Unlock()
		return append([]span(nil), spans...)
	}
}

// maxOverlap is the largest number of spans open at one instant.
func maxOverlap(spans []span) int {
	type edge struct {
		at   time.Time
		open int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].open < edges[j].open // close before open
		}
		return edges[i].at.Before(edges[j].at)
	})
	n, best := 0, 0
	for _, e := range edges {
		n += e.open
		best = max(best, n)
	}
	return best
}

func TestClaimsBoundConcurrency(t *testing.T) {
	files := map[string]string{}
	for i := range 6 {
		// 40 % of the 2 GiB pool each (+ 50 MiB overhead): two fit, three don't.
		files[fmt.Sprintf("c%d.test.lua", i)] = `
provium:claim{memory = "820M", cpus = 1}
test("boots inside its claim", function(t)
  local vm = provium:vm("v", "linux", {memory = "256M", agent_timeout = 600}):boot()
  t:assert_eq(vm:run("echo ok").stdout, "ok\n")
end)`
	}
	in, scratch := vmSuite(t, files)
	spans := recordSpans(in)
	code, stdout, stderr := in.exec("--accel", "tcg", "--mem", "2G", "--cpus", "8", ".")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got := spans()
	if len(got) != 6 {
		t.Fatalf("%d files ran, want 6", len(got))
	}
	if n := maxOverlap(got); n != 2 {
		t.Errorf("at most %d files ran at once, want exactly 2 (the pool holds two claims): %+v", n, got)
	}
	assertNothingLeft(t, scratch)
}

func TestClaimAndPoolRefusals(t *testing.T) {
	in, scratch := vmSuite(t, map[string]string{
		"over.test.lua": `
provium:claim{memory = "400M", cpus = 2}
test("the second VM exceeds the claim", function(t)
  provium:vm("a", "linux", {memory = "256M", agent_timeout = 600}):boot()
  provium:vm("b", "linux", {memory = "256M", agent_timeout = 600}):boot()
end)`,
		"labclaim.test.lua": `
provium:claim{memory = "800M", cpus = 3}
test("lab:boot of 3 VMs over the claim boots none", function(t)
  for _, n in ipairs({"x", "y", "z"}) do provium:vm(n, "linux", {memory = "256M", agent_timeout = 600}) end
  local ok, err = pcall(function() provium:boot() end)
  t:assert(not ok, "lab:boot succeeded")
  t:assert_contains(err, "lab:boot: booting 3 VMs needs 1.04 GiB and 3 cpus but this file's claim is 800 MiB and 3 cpus with 0 B and 0 cpus already in use; raise provium:claim to the file's peak")
  for _, n in ipairs({"x", "y", "z"}) do t:assert_eq(provium:vm(n):state(), "created") end
end)`,
		"fixtures/base.fixture.lua": `
local vm = provium:vm("base", "linux", {memory = "256M", agent_timeout = 600}):boot()
return vm:snapshot()`,
		"fx.test.lua": `
provium:claim{memory = "200M", cpus = 1}
test("a fixture build is charged to the file's claim", function(t)
  local err = t:assert_raises(function() provium:vm_fixture("fixtures/base") end)
  t:assert_contains(err, "fixture ` + "`fixtures/base`" + ` failed to build: ")
  t:assert_contains(err, "vm ` + "`base`" + ` needs 356 MiB and 1 cpu but this file's claim is 200 MiB and 1 cpu with 0 B and 0 cpus already in use")
end)`,
		"labpool.test.lua": `
test("lab:boot of 3 VMs over the pool boots none", function(t)
  for _, n in ipairs({"x", "y", "z"}) do provium:vm(n, "linux", {memory = "256M", agent_timeout = 600}) end
  local ok, err = pcall(function() provium:boot() end)
  t:assert(not ok, "lab:boot succeeded")
  t:assert_contains(err, "lab:boot: booting 3 VMs needs 1.04 GiB and 3 cpus, more than the whole pool (1 GiB and 8 cpus); lower it or raise --mem/--cpus")
  for _, n in ipairs({"x", "y", "z"}) do t:assert_eq(provium:vm(n):state(), "created") end
  -- Two of them fit: the pool is not left holding anything.
  provium:vm("x"):boot()
  provium:vm("y"):boot()
end)`,
	})
	code, stdout, stderr := in.exec("--accel", "tcg", "--mem", "1G", "--cpus", "8", "--json", ".")
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	byPath := map[string]jsonFile{}
	for _, f := range parseJSONLines(t, stdout) {
		byPath[f.Path] = f
	}
	for _, p := range []string{"fx.test.lua", "labclaim.test.lua", "labpool.test.lua"} {
		if f := byPath[p]; !f.Passed {
			for _, x := range f.Tests {
				if x.Message != nil {
					t.Errorf("%s: %s: %s", p, x.Name, *x.Message)
				}
			}
		}
	}
	over := byPath["over.test.lua"]
	const want = "vm `b` needs 356 MiB and 1 cpu but this file's claim is 400 MiB and 2 cpus with 356 MiB and 1 cpu already in use; raise provium:claim to the file's peak"
	if len(over.Tests) != 1 || over.Tests[0].Status != "failed" || over.Tests[0].Message == nil || !strings.Contains(*over.Tests[0].Message, want) {
		t.Errorf("over.test.lua: %+v", over.Tests)
	}
	assertNothingLeft(t, scratch)
}

// Two files each hold half the pool and ask for more: the request that
// closes the cycle fails at once with the B6 error (measured from that
// call), its test scope goes, and the other file then boots and passes.
func TestDeadlockFailsOneFileAtOnce(t *testing.T) {
	marks := t.TempDir()
	file := func(me, other string) string {
		return `
local function now() local p = io.popen("date +%s%N"); local s = p:read("a"); p:close(); return tonumber(s) end
local function touch(p) local f = assert(io.open(p, "w")); f:close() end
local function exists(p) local f = io.open(p); if f then f:close() return true end return false end
test("grows past half the pool", function(t)
  provium:vm("v1", "linux", {memory = "256M", agent_timeout = 600}):boot()
  touch("` + filepath.Join(marks, me) + `")
  wait_until(function() return exists("` + filepath.Join(marks, other) + `") end, {timeout = 900, interval = 0.05})
  local v2 = provium:vm("v2", "linux", {memory = "256M", agent_timeout = 600})
  local t0 = now()
  local ok, err = pcall(v2.boot, v2)
  local t1 = now()
  if not ok then
    local f = assert(io.open("` + filepath.Join(marks, me) + `.failed", "w"))
    f:write(string.format("%d\n%s", t1 - t0, tostring(err)))
    f:close()
    error(err, 0)
  end
  t:assert_eq(v2:run("echo ok").stdout, "ok\n")
end)`
	}
	in, scratch := vmSuite(t, map[string]string{
		"a.test.lua": file("a", "b"),
		"b.test.lua": file("b", "a"),
	})
	// 1 GiB: two files (50 MiB each) with one 356 MiB VM each leave 212 MiB.
	code, stdout, stderr := in.exec("--accel", "tcg", "--mem", "1G", "--cpus", "8", "--json", ".")
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var passed, failed []jsonFile
	for _, f := range parseJSONLines(t, stdout) {
		if f.Passed {
			passed = append(passed, f)
		} else {
			failed = append(failed, f)
		}
	}
	if len(passed) != 1 || len(failed) != 1 {
		t.Fatalf("want one file passed and one failed:\n%s\n%s", stdout, stderr)
	}
	name := strings.TrimSuffix(failed[0].Path, ".test.lua")
	rec, err := os.ReadFile(filepath.Join(marks, name+".failed"))
	if err != nil {
		t.Fatalf("the failing file left no record: %v", err)
	}
	took, msg, _ := strings.Cut(string(rec), "\n")
	ns, err := strconv.ParseInt(took, 10, 64)
	if err != nil {
		t.Fatalf("record %q", rec)
	}
	const want = "pool deadlock: 2 files hold 812 MiB and 2 cpus of 1 GiB and 8 cpus and all are waiting for more; 212 MiB and 6 cpus free fits none of the 2 waiting requests (this one needs 356 MiB and 1 cpu). Declare the file's peak with provium:claim({memory = …, cpus = …}) so it is reserved whole at dispatch"
	if !strings.Contains(msg, want) {
		t.Errorf("error:\n%s\nwant it to contain:\n%s", msg, want)
	}
	d := time.Duration(ns)
	t.Logf("the deadlock verdict came %s after the closing request", d)
	if d >= time.Second {
		t.Errorf("the deadlock verdict took %s after the closing request", d)
	}
	assertNothingLeft(t, scratch)
}

// Two long files hold the pool in turn for 20 s each; the third waits
// about 40 s in the queue and still passes with --timeout 30s: queueing is
// not charged (30-runtime.md B7).
func TestQueueTimeIsNotCharged(t *testing.T) {
	long := `
provium:claim{memory = "1200M"}
test("holds the pool", function(t) os.execute("sleep 20") end)`
	in, scratch := vmSuite(t, map[string]string{
		"a1.test.lua": long,
		"a2.test.lua": long,
		"b.test.lua": `
provium:claim{memory = "1200M", cpus = 1}
test("boots after queueing", function(t)
  local vm = provium:vm("v", "linux", {memory = "256M", agent_timeout = 600}):boot()
  t:assert_eq(vm:run("echo ok").stdout, "ok\n")
end)`,
	})
	spans := recordSpans(in)
	start := time.Now()
	code, stdout, stderr := in.exec("--accel", "tcg", "--mem", "2G", "--cpus", "8", "--timeout", "30s", ".")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, s := range spans() {
		if s.path == "b.test.lua" {
			if wait := s.start.Sub(start); wait <= 30*time.Second {
				t.Errorf("b.test.lua queued only %s: the test proves nothing", wait)
			}
			return
		}
	}
	t.Errorf("b.test.lua never ran")
	assertNothingLeft(t, scratch)
}
