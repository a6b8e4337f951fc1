package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build messages (20-cli-config.md §7.4).
const (
	noticeBuilding   = "provium: building profile `%s` → %s\n"
	errBuildExit     = "profile `%s`: build command failed (exit code %d)"
	errBuildSignal   = "profile `%s`: build command failed (killed by signal)"
	buildLogHint     = "(full output: %s)"
	buildTailLines   = 200
	buildVerboseLine = "[build %s] %s\n"
	// buildWaitDelay bounds how long Wait waits for output pipes held open
	// by background grandchildren after the shell exits or is killed.
	buildWaitDelay = 2 * time.Second
)

// BuildOptions configure a Builder.
type BuildOptions struct {
	// NoBuild skips every build command (--no-build).
	NoBuild bool
	// Notice receives the "provium: building profile …" line (stderr).
	Notice io.Writer
	// Verbose, when non-nil, receives each output line as "[build <name>] …" (-v).
	Verbose io.Writer
	// LogPath names the log file of a profile's build, e.g.
	// <scratch>/build-<name>.log. Required unless NoBuild.
	LogPath func(profile string) string
	// Environ is the base environment of the command; nil means os.Environ().
	Environ []string
	// ProfileEnv, when non-nil, adds KEY=VALUE entries for one profile's
	// build; it runs only when that build runs, and its error fails it.
	ProfileEnv func(ctx context.Context, p *Profile) ([]string, error)
}

// Builder runs profile build commands at most once per invocation; callers
// that need the same profile concurrently share one run.
type Builder struct {
	cfg  *Config
	opts BuildOptions

	mu   sync.Mutex
	runs map[string]*buildRun
}

// buildRun is one profile's build: done closes when err is final.
type buildRun struct {
	done      chan struct{}
	err       error
	cancelled bool // the starting caller's ctx ended; waiters start afresh
}

// NewBuilder returns a Builder for cfg's profiles.
func NewBuilder(cfg *Config, opts BuildOptions) *Builder {
	return &Builder{cfg: cfg, opts: opts, runs: map[string]*buildRun{}}
}

// BuildError is a build command that failed; its text carries the last
// output lines and the log path so the user sees why without opening it.
type BuildError struct {
	Profile  string
	ExitCode int  // valid when !Signaled
	Signaled bool // killed by a signal
	Tail     []string
	LogPath  string
}

func (e *BuildError) Error() string {
	var b strings.Builder
	if e.Signaled {
		fmt.Fprintf(&b, errBuildSignal, e.Profile)
	} else {
		fmt.Fprintf(&b, errBuildExit, e.Profile, e.ExitCode)
	}
	for _, l := range e.Tail {
		b.WriteString("\n")
		b.WriteString(l)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, buildLogHint, e.LogPath)
	return b.String()
}

// Ensure runs the named profile's build command unless it already ran (or
// is running) in this invocation. A profile without `build`, or NoBuild,
// succeeds at once. If the caller's ctx ends while another caller's run is
// in progress, Ensure returns ctx.Err() and the run goes on for the others.
func (b *Builder) Ensure(ctx context.Context, name string) error {
	p, err := b.cfg.Profile(name)
	if err != nil {
		return err
	}
	if b.opts.NoBuild || p.Build == "" {
		return nil
	}
	b.mu.Lock()
	run, running := b.runs[name]
	if !running {
		run = &buildRun{done: make(chan struct{})}
		b.runs[name] = run
	}
	b.mu.Unlock()
	if !running {
		run.err = b.run(ctx, p)
		if ctx.Err() != nil && run.err != nil {
			// Cancelled, not failed: forget the run so others retry.
			run.cancelled = true
			b.mu.Lock()
			delete(b.runs, name)
			b.mu.Unlock()
		}
		close(run.done)
		return run.err
	}
	select {
	case <-run.done:
		if run.cancelled {
			return b.Ensure(ctx, name)
		}
		return run.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EnsureAll builds every profile that has a build command, in name order,
// stopping at the first failure (`provium prepare` without a profile).
func (b *Builder) EnsureAll(ctx context.Context) error {
	for _, n := range b.cfg.ProfileNames() {
		if err := b.Ensure(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// run executes `sh -c <build>` in the profile's directory with its output
// going to the log (and to Verbose), after creating `{out}`.
func (b *Builder) run(ctx context.Context, p *Profile) error {
	if err := os.MkdirAll(p.Out, 0o755); err != nil {
		return fmt.Errorf("profile `%s`: create build output directory: %w", p.Name, err)
	}
	if b.opts.LogPath == nil {
		return fmt.Errorf("profile `%s`: no build log path configured", p.Name)
	}
	logPath := b.opts.LogPath(p.Name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("profile `%s`: create build log directory: %w", p.Name, err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("profile `%s`: create build log: %w", p.Name, err)
	}
	defer logFile.Close()

	if b.opts.Notice != nil {
		fmt.Fprintf(b.opts.Notice, noticeBuilding, p.Name, p.Out)
	}
	out := &buildOutput{log: logFile, verbose: b.opts.Verbose, profile: p.Name}

	cmd := exec.CommandContext(ctx, "sh", "-c", p.Build)
	cmd.Dir = p.Dir
	env := b.opts.Environ
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(append([]string{}, env...), "PROVIUM_PROFILE="+p.Name, "PROVIUM_OUT="+p.Out)
	if b.opts.ProfileEnv != nil {
		extra, err := b.opts.ProfileEnv(ctx, p)
		if err != nil {
			return fmt.Errorf("profile `%s`: build environment: %w", p.Name, err)
		}
		cmd.Env = append(cmd.Env, extra...)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	// A process group lets cancellation kill the whole build, not just sh.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = buildWaitDelay

	runErr := cmd.Run()
	out.flush()
	if runErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("profile `%s`: build cancelled: %w", p.Name, ctx.Err())
	}
	var ee *exec.ExitError
	if !errors.As(runErr, &ee) {
		return fmt.Errorf("profile `%s`: run build command: %w", p.Name, runErr)
	}
	be := &BuildError{Profile: p.Name, Tail: out.tailLines(), LogPath: logPath}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		be.Signaled = true
	} else {
		be.ExitCode = ee.ExitCode()
	}
	return be
}

// buildOutput receives the command's combined output: every byte goes to
// the log; complete lines go to the tail ring and the verbose stream.
type buildOutput struct {
	mu      sync.Mutex
	log     io.Writer
	verbose io.Writer
	profile string
	partial []byte
	tail    []string // ring of the last buildTailLines lines
	next    int      // ring write position once full
}

func (o *buildOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// A log write failure must not kill the build; the tail still works.
	_, _ = o.log.Write(b)
	o.partial = append(o.partial, b...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	return len(b), nil
}

// flush emits an unterminated last line.
func (o *buildOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.line(string(o.partial))
		o.partial = nil
	}
}

func (o *buildOutput) line(l string) {
	l = strings.TrimSuffix(l, "\r")
	if o.verbose != nil {
		fmt.Fprintf(o.verbose, buildVerboseLine, o.profile, l)
	}
	if len(o.tail) < buildTailLines {
		o.tail = append(o.tail, l)
		return
	}
	o.tail[o.next] = l
	o.next = (o.next + 1) % buildTailLines
}

// tailLines returns the kept lines oldest first.
func (o *buildOutput) tailLines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.tail))
	out = append(out, o.tail[o.next:]...)
	return append(out, o.tail[:o.next]...)
}
