package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/provium/provium/internal/discover"
)

// Watch-mode texts (20-cli-config.md §3.4).
const (
	watchPoll            = 500 * time.Millisecond
	msgWatchChange       = "provium --watch: change detected, re-running"
	msgWatchFailed       = "provium --watch: iteration failed: %v"
	msgWatchRerunDropped = "provium --watch: --rerun-failed is ignored in watch mode"
)

// watch runs at once, then polls every 500 ms and re-runs when the file
// set, a test file, a *.lua under the roots or the config changes. It ends
// when ctx is cancelled, with the exit code of the last iteration.
func (s *session) watch(ctx context.Context) error {
	if s.rerunFailed {
		fmt.Fprintln(s.env.Stderr, msgWatchRerunDropped)
		s.rerunFailed = false
	}
	// The fingerprint is taken before each iteration, never after: an edit
	// made while a run is in progress then still counts as a change.
	fp := s.fingerprint()
	code := s.watchIteration(ctx)
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.dropKept()
			return exitCode(code)
		case <-tick.C:
		}
		now := s.fingerprint()
		if now.Equal(fp) {
			continue
		}
		fmt.Fprintln(s.env.Stderr, msgWatchChange)
		fp = now
		code = s.watchIteration(ctx)
	}
}

// watchIteration runs once; a run that cannot start is reported and
// watching goes on.
func (s *session) watchIteration(ctx context.Context) int {
	s.dropKept()
	code, err := s.iteration(ctx)
	if err != nil {
		fmt.Fprintf(s.env.Stderr, msgWatchFailed+"\n", err)
		return ExitUsage
	}
	return code
}

// fingerprint snapshots what a change is judged by. A config or discovery
// that fails still yields a fingerprint of the config file, so fixing it
// counts as a change.
func (s *session) fingerprint() discover.Fingerprint {
	cfgPath := s.env.resolve(s.pf.config)
	cfg, err := s.loadConfig(false)
	if err != nil {
		return discover.TakeFingerprint(nil, cfgPath)
	}
	if cfg.Exists {
		cfgPath = cfg.Path
	}
	set, err := discover.Discover(discover.Options{Paths: s.paths, Roots: cfg.Roots, Cwd: s.env.Cwd})
	if err != nil {
		return discover.TakeFingerprint(nil, cfg.Path)
	}
	return discover.TakeFingerprint(set, cfgPath)
}

// dropKept tears down the VMs --keep-failed kept in the last iteration.
func (s *session) dropKept() {
	if s.releaseKept != nil {
		s.releaseKept()
		s.releaseKept = nil
	}
}
