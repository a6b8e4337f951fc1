// Package result holds the outcome model of a test run: what happened to each
// file and each test. The runner fills it in; the report renderers (plain,
// JSON, JUnit) and the rerun-state writer read it. It has no behaviour beyond
// small derived properties so that every consumer agrees on them.
package result

import "time"

// TestStatus is the outcome of one test.
type TestStatus string

const (
	Passed  TestStatus = "passed"
	Failed  TestStatus = "failed"
	Skipped TestStatus = "skipped"
)

// Console is the tail of one VM's console log, attached to a failed test.
type Console struct {
	VM   string // vm name as the user sees it (`dc1/a` in sub-labs)
	Tail string // the last 4 KiB of its console log
}

// Test is the outcome of one test() of a file.
type Test struct {
	Name    string
	Status  TestStatus
	Message string   // failure message or skip reason; empty when passed
	Log     []string // t:log entries, in order
	// Line is the innermost line in the test file where the failure was raised
	// (0 if unknown); DeclLine is the line of the test( call.
	Line     int
	DeclLine int
	Duration time.Duration
	Consoles []Console // per booted VM of the test, in boot order
	// Diagnosis is what each running VM was doing when the test or file
	// timed out (processes, the kernel's sysrq task dump), bounded.
	Diagnosis []Console
	Meta      map[string]any
}

// FileStatus is the overall status of a file (30-runtime.md B8).
type FileStatus string

const (
	FilePassed   FileStatus = "passed"
	FileFailed   FileStatus = "failed"
	FileTimedOut FileStatus = "timed_out"
	FileCrashed  FileStatus = "crashed"
)

// File is the outcome of one *.test.lua file.
type File struct {
	Path         string // display path
	RootRelative string // path relative to the scan entry that found it
	Canonical    string // absolute, symlinks resolved (rerun state)
	Tests        []Test
	// ChunkError is set when the top level raised, the runner crashed, or the
	// file was not run (--fail-fast). HasChunkError distinguishes an empty
	// message from none.
	ChunkError    string
	HasChunkError bool
	// ChunkErrorLine is the line in this file where the chunk error was raised (0 if
	// the error is elsewhere or unknown); used for CI annotations.
	ChunkErrorLine int
	TimedOut       bool
	Timeout        time.Duration // the file budget that expired, when TimedOut
	Crashed        bool
	Started        time.Time
	Duration       time.Duration
	Properties     map[string]string // seed, accel, provium_version (JUnit)
}

// Counts returns how many tests passed, failed and were skipped.
func (f *File) Counts() (passed, failed, skipped int) {
	for _, t := range f.Tests {
		switch t.Status {
		case Passed:
			passed++
		case Failed:
			failed++
		case Skipped:
			skipped++
		}
	}
	return
}

// Passed reports whether the file is clean: in time, no chunk error, no failed test.
func (f *File) Passed() bool {
	if f.TimedOut || f.HasChunkError || f.Crashed {
		return false
	}
	_, failed, _ := f.Counts()
	return failed == 0
}

// Errored reports whether the file counts as errored in the summary
// (chunk error or timeout).
func (f *File) Errored() bool { return f.HasChunkError || f.TimedOut || f.Crashed }

// Status derives the file status of 30-runtime.md B8.
func (f *File) Status() FileStatus {
	switch {
	case f.Crashed:
		return FileCrashed
	case f.TimedOut:
		return FileTimedOut
	case f.Passed():
		return FilePassed
	default:
		return FileFailed
	}
}

// Run is the outcome of a whole invocation.
type Run struct {
	Files    []*File // in discovery order
	Duration time.Duration
	Seed     uint64
}
