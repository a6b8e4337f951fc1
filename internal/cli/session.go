package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/events"
	"github.com/provium/provium/internal/filter"
	"github.com/provium/provium/internal/rerun"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/units"
)

// session is one run-mode invocation with its flags parsed and checked.
// A --watch session runs several iterations.
type session struct {
	env         *Env
	pf          *persistentFlags
	rf          *runFlags
	paths       []string
	filter      filter.Options
	timeout     time.Duration
	shard       *discover.ShardSpec
	seed        uint64
	rerunFailed bool
	rerunPath   string

	frames io.Writer          // --events-stdout: the real stdout (env.Stdout is then stderr)
	sock   *events.SocketSink // --events-socket, for the whole session
	cov    *coverageRun       // --coverage

	implicit implicitImage // the default image as profile `linux` (zeroconfig.go)
	// releaseKept tears down what --keep-failed kept under --watch (the
	// VMs and the run's backend); the next iteration or the end of
	// watching calls it. nil when nothing is kept.
	releaseKept func()
	sizing      sched.Sizing
	ksmOnce     sync.Once
}

// runMode is the root command: parse the flags, then run once or watch.
func runMode(ctx context.Context, env *Env, cmd *cobra.Command, pf *persistentFlags, rf *runFlags, args []string) error {
	s, err := newSession(env, cmd, pf, rf, args)
	if err != nil {
		return err
	}
	if rf.eventsSocket != "" {
		path := s.env.resolve(rf.eventsSocket)
		sock, err := events.ListenSocket(path, func(line string) { fmt.Fprintln(s.env.Stderr, line) })
		if err != nil {
			return fmt.Errorf(errFmtEventsSocket, rf.eventsSocket, err)
		}
		s.sock = sock
		defer sock.Close()
	}
	if rf.coverage {
		s.cov = s.setupCoverage()
		defer s.cov.cleanup()
	}
	if rf.watch {
		return s.watch(ctx)
	}
	return s.runOnce(ctx)
}

func newSession(env *Env, cmd *cobra.Command, pf *persistentFlags, rf *runFlags, args []string) (*session, error) {
	if err := pf.check(); err != nil {
		return nil, err
	}
	if rf.json && rf.eventsStdout {
		return nil, usagef("%s", msgJSONEventsStdout)
	}
	s := &session{env: env, pf: pf, rf: rf, paths: args, rerunFailed: rf.rerunFailed}
	if rf.eventsStdout {
		// Frames own stdout; everything else it would carry goes to stderr.
		moved := *env
		moved.Stdout = env.Stderr
		s.env = &moved
		s.frames = env.Stdout
	}

	timeout, err := units.ParseTimeoutFlag(rf.timeout)
	if err != nil {
		return nil, asUsage(err)
	}
	s.timeout = timeout

	if s.shard, err = parseShard(rf.shard); err != nil {
		return nil, err
	}
	if rf.jobs < 0 {
		return nil, usagef("--jobs: expected a number ≥ 0, got %d", rf.jobs)
	}
	if s.sizing, err = s.parseSizing(); err != nil {
		return nil, err
	}

	opts := filter.Options{IncludeSlow: rf.includeSlow, Tag: rf.tags, NoTag: rf.noTags}
	for _, raw := range rf.tagMeta {
		kv, err := filter.ParseKV("tag-meta", raw)
		if err != nil {
			return nil, asUsage(err)
		}
		opts.TagMeta = append(opts.TagMeta, kv)
	}
	for _, raw := range rf.noTagMeta {
		kv, err := filter.ParseKV("no-tag-meta", raw)
		if err != nil {
			return nil, asUsage(err)
		}
		opts.NoTagMeta = append(opts.NoTagMeta, kv)
	}
	given := false
	for _, name := range selectionFlags {
		given = given || cmd.Flags().Changed(name)
	}
	s.filter, err = filter.Resolve(opts, given, env.lookup)
	if err != nil {
		return nil, err
	}

	if cmd.Flags().Changed("seed") {
		s.seed = rf.seed
	} else {
		s.seed = rand.Uint64()
	}
	s.rerunPath = rerun.Path(env.lookup)
	return s, nil
}

// notice prints a line on stderr with the `provium: ` prefix.
func (s *session) notice(format string, args ...any) {
	fmt.Fprintf(s.env.Stderr, exitPrefix+format+"\n", args...)
}

// loadConfig loads --config or ./provium.toml. Warnings are printed when
// print is set (watch polling reloads quietly).
func (s *session) loadConfig(print bool) (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	if s.pf.config != "" {
		cfg, err = config.LoadEnv(s.env.resolve(s.pf.config), s.env.lookup)
	} else {
		cfg, err = config.LoadDefaultEnv(s.env.Cwd, s.env.lookup)
	}
	if err != nil {
		return nil, err
	}
	withImplicitLinux(cfg)
	if print {
		for _, w := range cfg.Warnings {
			s.notice("%s", w)
		}
	}
	return cfg, nil
}

// errNoRerunState says --rerun-failed found nothing to re-run.
var errNoRerunState = errors.New("no rerun state")

// discovery runs discovery and selection stages 1–4 (§3.2). It returns
// errNoRerunState (after printing the notice) when --rerun-failed has no
// state.
func (s *session) discovery(cfg *config.Config, print bool) (*discover.Set, []discover.File, error) {
	set, err := discover.Discover(discover.Options{Paths: s.paths, Roots: cfg.Roots, Cwd: s.env.Cwd})
	if err != nil {
		var pe *discover.PathError
		if errors.As(err, &pe) {
			return nil, nil, asUsage(err)
		}
		return nil, nil, err
	}
	if print {
		for _, w := range set.Warnings {
			s.notice("warning: %s", w)
		}
	}
	files := discover.Filter(set.Files, s.rf.filters)
	if s.shard != nil {
		files = discover.Shard(files, s.shard.Index, s.shard.Count)
	}
	if s.rerunFailed {
		state, err := rerun.Load(s.rerunPath)
		if err != nil {
			return nil, nil, err
		}
		if len(state) == 0 {
			if print {
				fmt.Fprintln(s.env.Stderr, rerun.NoStateMessage(s.rerunPath))
			}
			return set, nil, errNoRerunState
		}
		files = rerun.Select(files, state)
	}
	if s.rf.since != "" {
		files, err = discover.Since(files, s.env.resolve(s.rf.since))
		if err != nil {
			return nil, nil, asUsage(err)
		}
	}
	return set, files, nil
}

// resolve makes a relative command-line path relative to Env.Cwd when that
// is not the process's own working directory (in-process tests).
func (e *Env) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || e.Cwd == "" {
		return p
	}
	if wd, err := os.Getwd(); err == nil && wd == e.Cwd {
		return p
	}
	return filepath.Join(e.Cwd, p)
}

// parseShard parses --shard; "" means no sharding.
func parseShard(v string) (*discover.ShardSpec, error) {
	if v == "" {
		return nil, nil
	}
	spec, err := discover.ParseShard(v)
	if err != nil {
		return nil, asUsage(err)
	}
	return &spec, nil
}
