// Package report renders the outcome of a run for people and tools: plain
// text (20-cli-config.md §4.2), GitHub Actions annotations (§4.3), JSON lines
// (§4.4) and JUnit XML (§4.5). Renderers only format: the runner decides which
// ones are active, which stream each writes to, and delivers files in
// discovery order.
//
// Where the spec is silent we chose:
//   - -q prints the whole block (file line and failure details) of every file
//     that did not pass, and nothing for clean files;
//   - a file with a chunk error lists no tests in plain or JSON output (its
//     tests never ran, or were abandoned); JUnit still lists any it has;
//   - a crashed file without a failed test is labelled FAIL, never PASS;
//   - tests of a timed-out file that never started get no annotation of their
//     own: the file's `timed out after` annotation covers them;
//   - the JUnit `(file)` testcase's time is the file's time not spent in tests;
//   - durations in messages use FormatDuration (300s, 1.5s, 500ms).
package report

import (
	"errors"

	"github.com/provium/provium/internal/result"
)

// FileRenderer receives each file's outcome as soon as the runner may report
// it (discovery order). Implementations write the file's block at once so
// output streams while the run goes on.
type FileRenderer interface {
	File(f *result.File) error
}

// Multi fans one file out to several renderers in order, e.g. the plain
// block followed by its GitHub annotations, so they appear together.
type Multi []FileRenderer

// File renders f with every renderer; all of them run even if one fails, and
// the failures are joined.
func (m Multi) File(f *result.File) error {
	var errs []error
	for _, r := range m {
		if err := r.File(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
