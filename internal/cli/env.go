// Package cli builds the `provium` command tree (20-cli-config.md): run mode
// and the subcommands. Everything the commands touch from the outside world
// (streams, environment, working directory, the file runner) comes in
// through Env so tests can run the real command tree in-process.
//
// Choices where the spec is silent:
//   - An interrupted run (SIGINT/SIGTERM) reports the files that started;
//     files never dispatched are left out of the report and the summary.
//   - With --json and GITHUB_ACTIONS=true the annotations go to stderr so
//     stdout stays one JSON object per line.
//   - --junit is written even when nothing was found (an empty report), so
//     CI steps that upload it always find it.
//   - Failing to save the rerun state is a warning, not an exit-2 error: the
//     run itself is complete.
//   - Usage errors (bad flags, bad PATHs, bad flag values) get the
//     `Run 'provium --help' for usage.` hint; config, preflight and I/O
//     errors do not.
//   - The JUnit `accel` property is the accelerator the run chose (kvm or
//     tcg, never auto); `accel_reason` says why (request, its source, the
//     KVM probe's verdict).
package cli

import (
	"context"
	"io"
	"os"
	"sync/atomic"

	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// FileRunner runs one test file; a cancelled ctx means the run was
// interrupted and the runner returns what it has.
type FileRunner func(ctx context.Context, f runner.File, opts *runner.Options) *result.File

// Env is the outside world of one invocation.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable (os.LookupEnv semantics).
	LookupEnv func(key string) (string, bool)
	// Cwd is the working directory relative paths resolve against.
	Cwd string
	// RunFile runs one file; nil means the real runner.
	RunFile FileRunner
	// Setenv sets a variable of the process environment, which tests read
	// with os.getenv (PROVIUM_TEST_FILTER); nil leaves it alone.
	Setenv func(key, value string) error
	// HostRoot is where the pool reads /proc (meminfo, cgroup, pressure)
	// and /sys/fs/cgroup; "" means "/". KSMDir is the KSM knobs' directory;
	// "" means sched.KSMDir. Tests point both at their own trees.
	HostRoot string
	KSMDir   string

	// keepWaited is set once a --keep-failed run waits for Ctrl-C: the
	// signal then only ends the wait (Main does not re-raise it).
	keepWaited *atomic.Bool
}

// OSEnv is the environment of the real process.
func OSEnv() (Env, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return Env{}, err
	}
	return Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		Cwd:       cwd,
		Setenv:    os.Setenv,
	}, nil
}

// getenv returns a variable's value, "" when unset.
func (e *Env) getenv(key string) string {
	if e.LookupEnv == nil {
		return ""
	}
	v, _ := e.LookupEnv(key)
	return v
}

func (e *Env) lookup(key string) (string, bool) {
	if e.LookupEnv == nil {
		return "", false
	}
	return e.LookupEnv(key)
}

func (e *Env) fileRunner() FileRunner {
	if e.RunFile != nil {
		return e.RunFile
	}
	return defaultRunFile
}
