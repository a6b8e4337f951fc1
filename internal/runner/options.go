// Package runner executes one *.test.lua file: it creates the file's Lua
// state and root lab, runs the top-level chunk, then every registered test
// in declaration order with a fresh t context and test scope, enforcing the
// per-test and per-file watchdogs, and returns the file's outcome.
package runner

import (
	"io"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/filter"
	"github.com/provium/provium/internal/lab"
)

// Options configure how files run. One Options value is shared by all
// files of an invocation; it is read-only while files run.
type Options struct {
	Config *config.Config
	// Roots are the effective test roots (absolute), prepended to package.path.
	Roots []string
	// Filter decides per-test skips (stages 5-10 of the selection order).
	Filter filter.Options
	// FileTimeout is the per-file wall budget; 0 disables it.
	FileTimeout time.Duration
	// Seed is the run seed (derives per-object seeds).
	Seed uint64
	// Diagnostics receives -v diagnostics (`provium: [<path>] vm <name>: ...`).
	Diagnostics io.Writer
	Verbose     bool
	// Backend returns the VM backend of a file (by display path); nil means
	// no guests can boot (booting then fails with a clear error).
	Backend func(file string) lab.Backend
	// Fixtures enables vm_fixture/lab_fixture (fixture.go); nil: unavailable.
	Fixtures *Fixtures
	// Events receives the test events of 30-runtime.md C2 (nil: none);
	// they carry the file's root-relative path.
	Events *events.Emitter
	// Keep, when set (--keep-failed), receives the running VMs of a failed
	// test's scope (test = its name) and, when a file ends with a failure,
	// its file-scope VMs (test = ""); they are then not shut down: the
	// caller owns them. Timeouts keep nothing.
	// The scope's bridges come along (closers), to be closed after the VMs.
	Keep func(file File, test string, vms []*lab.VM, bridges []lab.Closer)
	// Trace, when set, hears the runner's phases and every guest operation
	// of a file as spans (--trace).
	Trace Tracer
}

// Tracer records spans of one run for the trace view. Begin starts a span
// on the track of file (its display path) and returns its end.
type Tracer interface {
	Begin(file, name string) (end func())
}

// File is what the runner needs to know about a discovered file.
type File = discover.File
