package report

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/provium/provium/internal/result"
)

func renderPlain(t *testing.T, opts PlainOptions, files ...*result.File) string {
	t.Helper()
	var b bytes.Buffer
	p := NewPlain(&b, opts)
	for _, f := range files {
		if err := p.File(f); err != nil {
			t.Fatalf("File(%s): %v", f.Path, err)
		}
	}
	return b.String()
}

func TestPlainDefault(t *testing.T) {
	got := renderPlain(t, PlainOptions{}, passingFile(), failingFile())
	want := "PASS tests/smoke.test.lua (1 passed, 0 failed, 1 skipped)\n" +
		"FAIL tests/net/partition.test.lua (1 passed, 1 failed, 1 skipped)\n" +
		"    FAIL split-brain\n" +
		"        partition.test.lua:12: client A could not reach B\n" +
		"        stack traceback:\n" +
		"        \tpartition.test.lua:12\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainVerbose(t *testing.T) {
	got := renderPlain(t, PlainOptions{Verbose: true}, passingFile(), failingFile())
	want := "PASS tests/smoke.test.lua (1 passed, 0 failed, 1 skipped)\n" +
		"    PASS boots\n" +
		"    SKIP slow one (filtered: slow tests skipped (pass --include-slow))\n" +
		"FAIL tests/net/partition.test.lua (1 passed, 1 failed, 1 skipped)\n" +
		"    PASS reach\n" +
		"    FAIL split-brain\n" +
		"        partition.test.lua:12: client A could not reach B\n" +
		"        stack traceback:\n" +
		"        \tpartition.test.lua:12\n" +
		"        log: before partition\n" +
		"        log: two\n" +
		"             lines\n" +
		"    SKIP todo (todo)\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainQuietShowsOnlyUncleanFiles(t *testing.T) {
	got := renderPlain(t, PlainOptions{Quiet: true}, passingFile(), chunkErrorFile(), timedOutFile())
	want := "FAIL tests/broken.test.lua\n" +
		"  chunk_error: tests/broken.test.lua:3: attempt to call a nil value\n" +
		"    stack traceback:\n" +
		"    \t[C]: in ?\n" +
		"TIME tests/long.test.lua (1 passed, 2 failed, 0 skipped)\n" +
		"    FAIL hangs\n" +
		"        file timed out after 30s\n" +
		"    FAIL after\n" +
		"        not run: file timed out\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainTimedOutChunkErrorSaysTime(t *testing.T) {
	f := chunkErrorFile()
	f.TimedOut = true
	f.ChunkError = "file timed out after 5s"
	got := renderPlain(t, PlainOptions{}, f)
	want := "TIME tests/broken.test.lua\n  chunk_error: file timed out after 5s\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPlainCrashedWithoutFailedTestIsFail(t *testing.T) {
	f := &result.File{Path: "a.test.lua", Crashed: true, Tests: []result.Test{{Name: "x", Status: result.Passed}}}
	got := renderPlain(t, PlainOptions{}, f)
	if want := "FAIL a.test.lua (1 passed, 0 failed, 0 skipped)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPlainNumberedCountsHiddenFiles(t *testing.T) {
	// -q hides the first file, but the second is still the second of three.
	got := renderPlain(t, PlainOptions{Quiet: true, Numbered: true, Total: 3}, passingFile(), chunkErrorFile())
	want := "[2/3] FAIL tests/broken.test.lua\n" +
		"  chunk_error: tests/broken.test.lua:3: attempt to call a nil value\n" +
		"    stack traceback:\n" +
		"    \t[C]: in ?\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainMessageTrailingNewlineAndCRLF(t *testing.T) {
	f := &result.File{Path: "a.test.lua", Tests: []result.Test{
		{Name: "x", Status: result.Failed, Message: "one\r\ntwo\n"},
		{Name: "y", Status: result.Skipped, Message: ""},
	}}
	got := renderPlain(t, PlainOptions{Verbose: true}, f)
	want := "FAIL a.test.lua (0 passed, 1 failed, 1 skipped)\n" +
		"    FAIL x\n        one\n        two\n" +
		"    SKIP y\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPlainSummary(t *testing.T) {
	run := &result.Run{
		Files:    []*result.File{passingFile(), failingFile(), chunkErrorFile(), timedOutFile()},
		Duration: 12345 * time.Millisecond,
		Seed:     18446744073709551615,
	}
	var b bytes.Buffer
	if err := NewPlain(&b, PlainOptions{Quiet: true}).Summary(run); err != nil {
		t.Fatal(err)
	}
	want := "\n4 file(s); 3 passed, 3 failed, 2 skipped, 2 file(s) errored; 12.35s\n" +
		"seed 18446744073709551615 (reproduce with --seed 18446744073709551615)\n"
	if got := b.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSummaryLineOmitsErroredWhenZero(t *testing.T) {
	run := &result.Run{Files: []*result.File{passingFile()}, Duration: 5 * time.Millisecond}
	if got, want := SummaryLine(run), "1 file(s); 1 passed, 0 failed, 1 skipped; 0.01s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPlainReportsWriteErrors(t *testing.T) {
	p := NewPlain(failingWriter{}, PlainOptions{})
	if err := p.File(passingFile()); err == nil {
		t.Error("File: want error from the writer")
	}
	if err := p.Summary(&result.Run{}); err == nil {
		t.Error("Summary: want error from the writer")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Second:       "300s",
		10 * time.Minute:        "600s",
		1500 * time.Millisecond: "1.5s",
		500 * time.Millisecond:  "500ms",
		250 * time.Microsecond:  "0.25ms",
		0:                       "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
