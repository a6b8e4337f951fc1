package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/filter"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/report"
	"github.com/provium/provium/internal/rerun"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
	"github.com/provium/provium/internal/vmm"
)

// msgNothingFound is printed on stdout when discovery and selection leave
// no file (exit 0).
const msgNothingFound = "provium: no *.test.lua files found"

// msgWatchEmpty replaces it under --watch.
const msgWatchEmpty = "provium --watch: no *.test.lua files match the current filter yet — watching for new files"

// runOnce is one complete run: config, preflight, discovery, the files,
// the reports. The returned error carries the exit code.
func (s *session) runOnce(ctx context.Context) error {
	code, err := s.iteration(ctx)
	if err != nil {
		return err
	}
	return exitCode(code)
}

// iteration runs once and returns the exit code of a run that happened, or
// an error for one that could not start (config, preflight, discovery).
func (s *session) iteration(ctx context.Context) (int, error) {
	cfg, err := s.loadConfig(true)
	if err != nil {
		return 0, err
	}
	accel, err := s.checkEnvironment(ctx, cfg)
	if err != nil {
		return 0, err
	}
	set, files, err := s.discovery(cfg, true)
	if errors.Is(err, errNoRerunState) {
		return ExitOK, nil
	}
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return s.nothingFound()
	}
	return s.runFiles(ctx, cfg, set, files, accel)
}

// nothingFound reports an empty selection.
func (s *session) nothingFound() (int, error) {
	switch {
	case s.rf.watch:
		fmt.Fprintln(s.env.Stderr, msgWatchEmpty)
	case s.rf.json:
		if err := report.WriteNoFiles(s.env.Stdout); err != nil {
			return 0, err
		}
	default:
		fmt.Fprintln(s.env.Stdout, msgNothingFound)
	}
	if s.rf.junit != "" {
		run := &result.Run{Seed: s.seed}
		if err := report.WriteJUnit(s.env.resolve(s.rf.junit), run, report.JUnitOptions{}); err != nil {
			return 0, err
		}
	}
	return ExitOK, nil
}

// runFiles runs the selected files, streams their reports in discovery
// order and writes the end-of-run outputs.
func (s *session) runFiles(ctx context.Context, cfg *config.Config, set *discover.Set, files []discover.File, accel string) (int, error) {
	var diag io.Writer
	if s.pf.verbose {
		diag = s.env.Stderr
	}
	opts := &runner.Options{
		Config:      cfg,
		Roots:       set.Roots,
		Filter:      s.filter,
		FileTimeout: s.timeout,
		Seed:        s.seed,
		Diagnostics: diag,
		Verbose:     s.pf.verbose,
	}
	// A profile's build runs at its first use; a failing build aborts the
	// run (exit 2, 20-cli-config.md §7.4).
	runCtx, abortRun := context.WithCancel(ctx)
	defer abortRun()
	ctx = runCtx
	var buildErr error
	var buildMu sync.Mutex
	// Build commands and tests see the run's selection (20 §9).
	selection := s.filter.EnvJSON()
	if s.env.Setenv != nil {
		if err := s.env.Setenv(filter.EnvVar, selection); err != nil {
			return 0, fmt.Errorf("setting %s: %w", filter.EnvVar, err)
		}
	}
	build := s.profileBuilds(cfg, diag, filter.EnvVar+"="+selection)
	prepare := func(ctx context.Context, profile string) error {
		err := build(ctx, profile)
		if err != nil && ctx.Err() == nil {
			buildMu.Lock()
			if buildErr == nil {
				buildErr = err
			}
			buildMu.Unlock()
			abortRun()
		}
		return err
	}
	opts.Fixtures = s.fixtureRuntime(ctx, cfg, set, accel)
	stream, err := s.openStream(files, set.Roots, opts.Fixtures)
	if err != nil {
		return 0, err
	}
	opts.Events = stream.em
	if stream.trace != nil {
		opts.Trace = stream.trace
	}
	backend := s.guestBackend(cfg, accel, prepare, stream.guestHooks())
	keepBackend := false // --watch --keep-failed: it outlives the iteration
	defer func() {
		if !keepBackend {
			backend.Close()
		}
	}()
	opts.Backend = backend.ForFile
	var kept *keeper
	if s.rf.keepFailed {
		kept = &keeper{opts: opts}
		opts.Keep = kept.keep
	}
	props := map[string]string{
		"seed":            fmt.Sprint(s.seed),
		"provium_version": versionNumber(),
	}

	pool, err := s.newPool(cfg, stream)
	if err != nil {
		return 0, err
	}
	stream.startPool(pool)
	s.tuneKSM()

	out := s.newOutput(len(files))
	start := time.Now()
	results, renderErr := executeFiles(ctx, files, execution{
		run:      s.env.fileRunner(),
		opts:     opts,
		pool:     pool,
		declared: declaredClaim,
		failFast: s.rf.failFast,
		props:    props,
		report:   out.file,
		started:  out.started,
		stream:   stream,
	})
	stream.close()
	run := &result.Run{Files: results, Duration: time.Since(start), Seed: s.seed}
	out.stop()
	if err := out.summary(run); err != nil && renderErr == nil {
		renderErr = err
	}

	code := ExitOK
	var failed []string
	for _, f := range results {
		if !f.Passed() {
			code = ExitFailed
			failed = append(failed, f.Canonical)
		}
	}
	if len(failed) > 0 {
		if err := rerun.Save(s.rerunPath, failed); err != nil {
			s.notice("warning: %v", err)
		}
	}
	if s.rf.junit != "" {
		setProps(results, s.accelProperties(ctx, cfg, accel))
		if err := report.WriteJUnit(s.env.resolve(s.rf.junit), run, report.JUnitOptions{}); err != nil {
			return 0, err
		}
	}
	if stream.trace != nil {
		if err := stream.trace.WriteFile(s.env.resolve(s.rf.trace)); err != nil {
			return 0, fmt.Errorf(errFmtTrace, s.rf.trace, err)
		}
	}
	if s.cov != nil && !s.runCoverage(ctx) {
		code = ExitFailed
	}
	switch {
	case kept == nil:
	case s.rf.watch:
		// Kept until the next iteration (or the end of watching).
		if stop := kept.start(s, cfg.ScratchDir()); stop != nil {
			keepBackend = true
			s.releaseKept = func() {
				stop()
				backend.Close()
			}
		}
	default:
		// After the summary; Ctrl-C ends the wait and tears them down.
		kept.hold(ctx, s, cfg.ScratchDir())
	}
	if renderErr != nil {
		return 0, renderErr
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildErr != nil {
		return 0, buildErr
	}
	return code, nil
}

// guestBackend makes the VM backend of a run; the KVM probe and the run
// directory happen at the first boot.
func (s *session) guestBackend(cfg *config.Config, requested string, prepare func(context.Context, string) error, hooks guest.Hooks) *guest.Lazy {
	return &guest.Lazy{Make: func(ctx context.Context) (*guest.Backend, error) {
		_, source, _ := cfg.Accel(s.pf.accel)
		dec, err := accel.Resolve(ctx, requested, accelSourceText(source, requested), accel.Options{CacheDir: cfg.ScratchDir()})
		if err != nil {
			return nil, err
		}
		if dec.Notice != "" && !s.pf.quiet {
			fmt.Fprintln(s.env.Stderr, dec.Notice)
		}
		return guest.New(guest.Options{
			Config:      cfg,
			ScratchRoot: cfg.ScratchDir(),
			Accel:       vmm.Accel(dec.Accel),
			Seed:        s.seed,
			Prepare:     prepare,
			Hooks:       hooks,
		})
	}}
}
