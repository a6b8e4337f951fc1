package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// fakeTree writes n trivial test files f0.test.lua … and returns the dir.
func fakeTree(t *testing.T, names ...string) string {
	files := map[string]string{}
	for _, n := range names {
		files[n] = `test("x", function(t) end)`
	}
	return writeTree(t, files)
}

func outcome(f runner.File, status result.TestStatus, msg string) *result.File {
	return &result.File{Path: f.Display, RootRelative: f.RootRel, Canonical: f.Canonical,
		Tests: []result.Test{{Name: "x", Status: status, Message: msg}}}
}

// A fake runner (the real one cannot be made to finish in a chosen order):
// every file waits until the file after it has finished, so they finish in
// reverse order; reports must still come in discovery order.
func TestResultsInDiscoveryOrder(t *testing.T) {
	names := []string{"a.test.lua", "b.test.lua", "c.test.lua", "d.test.lua"}
	dir := fakeTree(t, names...)
	finished := map[string]chan struct{}{}
	for _, n := range names {
		finished[n] = make(chan struct{})
	}
	var mu sync.Mutex
	var order []string
	in := newInvocation(t, dir)
	in.run = func(ctx context.Context, f runner.File, _ *runner.Options) *result.File {
		i := slices.Index(names, f.Display)
		if i+1 < len(names) {
			<-finished[names[i+1]]
		}
		mu.Lock()
		order = append(order, f.Display)
		mu.Unlock()
		defer close(finished[f.Display])
		return outcome(f, result.Passed, "")
	}
	code, out, _ := in.exec("-j", "4")
	if code != ExitOK {
		t.Errorf("exit %d", code)
	}
	if !slices.Equal(order, []string{"d.test.lua", "c.test.lua", "b.test.lua", "a.test.lua"}) {
		t.Fatalf("files did not run concurrently in the expected order: %v", order)
	}
	var want []string
	for _, n := range names {
		want = append(want, "PASS "+n+" (1 passed, 0 failed, 0 skipped)")
	}
	if got := fileLines(out); !slices.Equal(got, want) {
		t.Errorf("report order %q, want %q", got, want)
	}
}

func TestJobsLimit(t *testing.T) {
	names := []string{"a.test.lua", "b.test.lua", "c.test.lua", "d.test.lua", "e.test.lua"}
	dir := fakeTree(t, names...)
	var mu sync.Mutex
	running, peak := 0, 0
	in := newInvocation(t, dir)
	in.run = func(ctx context.Context, f runner.File, _ *runner.Options) *result.File {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		return outcome(f, result.Passed, "")
	}
	if code, _, _ := in.exec("-j", "1"); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if peak != 1 {
		t.Errorf("-j 1 ran %d files at once", peak)
	}
}

func TestFailFastFakeRunner(t *testing.T) {
	names := []string{"a.test.lua", "b.test.lua", "c.test.lua"}
	dir := fakeTree(t, names...)
	var (
		mu  sync.Mutex
		ran []string
	)
	in := newInvocation(t, dir)
	in.run = func(ctx context.Context, f runner.File, _ *runner.Options) *result.File {
		mu.Lock()
		ran = append(ran, f.Display)
		mu.Unlock()
		if f.Display == "a.test.lua" {
			return outcome(f, result.Failed, "boom")
		}
		return outcome(f, result.Passed, "")
	}
	code, out, _ := in.exec("--fail-fast", "-j", "1", "--json")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	if !slices.Equal(ran, []string{"a.test.lua"}) {
		t.Errorf("ran %v after the first failure", ran)
	}
	files := parseJSONLines(t, out)
	if len(files) != 3 {
		t.Fatalf("%d files reported, want 3", len(files))
	}
	for _, f := range files[1:] {
		if f.ChunkError == nil || *f.ChunkError != "not run (--fail-fast)" || f.Passed || len(f.Tests) != 0 {
			t.Errorf("%s: %+v", f.Path, f)
		}
	}
}

func TestFailFastSuite(t *testing.T) {
	dir := suiteDir(t)
	code, out, _ := newInvocation(t, dir).exec("--fail-fast", "-j", "1", "--json")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	files := parseJSONLines(t, out)
	want := suiteWant()
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d", len(files), len(want))
	}
	if files[0].Path != "assertions.test.lua" || files[0].ChunkError != nil || len(files[0].Tests) == 0 {
		t.Errorf("first file did not run: %+v", files[0])
	}
	for i, f := range files[1:] {
		if f.Path != want[i+1].path || f.ChunkError == nil || *f.ChunkError != "not run (--fail-fast)" {
			t.Errorf("file %d: %s chunk_error %v", i+1, f.Path, f.ChunkError)
		}
	}
}

// Cancelling the run context (what SIGINT does) stops dispatch; the
// summary, rerun state and JUnit report are still written.
func TestInterruptedRun(t *testing.T) {
	dir := fakeTree(t, "a.test.lua", "b.test.lua")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInvocation(t, dir)
	in.run = func(ctx context.Context, f runner.File, _ *runner.Options) *result.File {
		cancel() // the interrupt arrives while the first file runs
		<-ctx.Done()
		return outcome(f, result.Failed, "interrupted")
	}
	junit := filepath.Join(t.TempDir(), "j.xml")
	code, out, _ := in.execCtx(ctx, "-j", "1", "--junit", junit)
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	if got := fileLines(out); !slices.Equal(got, []string{"FAIL a.test.lua (0 passed, 1 failed, 0 skipped)"}) {
		t.Errorf("reported %q; b must never start", got)
	}
	if !strings.Contains(out, "\n1 file(s); 0 passed, 1 failed, 0 skipped; ") {
		t.Errorf("no summary:\n%s", out)
	}
	if _, err := os.Stat(in.vars["PROVIUM_RERUN_STATE"]); err != nil {
		t.Errorf("rerun state not written: %v", err)
	}
	if doc := readJUnit(t, junit); len(doc.Suites) != 1 {
		t.Errorf("junit suites %d, want 1", len(doc.Suites))
	}
}

func TestRunnerPanicIsACrashedFile(t *testing.T) {
	dir := fakeTree(t, "a.test.lua", "b.test.lua")
	in := newInvocation(t, dir)
	in.run = func(ctx context.Context, f runner.File, _ *runner.Options) *result.File {
		if f.Display == "a.test.lua" {
			panic("kaboom")
		}
		return outcome(f, result.Passed, "")
	}
	code, out, _ := in.exec("--json")
	files := parseJSONLines(t, out)
	if code != ExitFailed || len(files) != 2 || files[0].ChunkError == nil ||
		!strings.HasPrefix(*files[0].ChunkError, "runner panic: kaboom") || !files[1].Passed {
		t.Errorf("exit %d, files %+v", code, files)
	}
}
