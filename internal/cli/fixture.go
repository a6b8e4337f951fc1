package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/runner"
)

// fixtureRuntime opens the run's fixture cache and keyer when the roots hold
// fixtures (nil otherwise, so plain runs pay nothing), after the startup
// housekeeping of 30-runtime.md A6/A10: stale temporaries, then eviction.
func (s *session) fixtureRuntime(ctx context.Context, cfg *config.Config, set *discover.Set, requested string) *runner.Fixtures {
	if len(set.Fixtures) == 0 {
		return nil
	}
	return s.openFixtures(ctx, cfg, set.Roots, requested, true)
}

// openFixtures makes the fixture runtime; housekeeping runs the startup
// cleanup and eviction first.
func (s *session) openFixtures(ctx context.Context, cfg *config.Config, roots []string, requested string, housekeeping bool) *runner.Fixtures {
	resolved := requested
	_, source, _ := cfg.Accel(s.pf.accel)
	if dec, err := accel.Resolve(ctx, requested, accelSourceText(source, requested), accel.Options{CacheDir: cfg.ScratchDir()}); err == nil {
		resolved = string(dec.Accel)
	}
	agentPath, _ := (&agentbin.Locator{}).Path(ctx)
	warn := func(line string) { fmt.Fprintln(s.env.Stderr, line) }
	fx := runner.NewFixtures(cfg, runner.FixtureSetup{
		Roots: roots, Accel: resolved, AgentPath: agentPath, Argv: os.Args, Warn: warn,
	})
	if housekeeping {
		s.cacheHousekeeping(fx.Cache, cfg)
	}
	return fx
}

// cacheHousekeeping removes stale build temporaries and evicts down to
// cache_max_size; a missing cache directory is left to preflight.
func (s *session) cacheHousekeeping(c *fixture.Cache, cfg *config.Config) {
	if _, err := os.Stat(c.Dir()); err != nil {
		return
	}
	if _, err := c.CleanStaleTemps(time.Now(), fixture.StaleTempAge); err != nil {
		s.notice("warning: fixture cache: %v", err)
	}
	limit := int64(cfg.CacheMaxSize)
	if limit <= 0 {
		limit = fixture.DefaultMaxSize
	}
	res, err := c.Evict(limit)
	if err != nil {
		s.notice("warning: fixture cache: %v", err)
	}
	if msg := res.Message(); msg != "" {
		fmt.Fprintln(s.env.Stderr, msg)
	}
}

// newFixtureCmd is `provium fixture list|build|rebuild|clean|stale`
// (20-cli-config.md §6).
func newFixtureCmd(env *Env, pf *persistentFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fixture",
		Short: "Inspect and manage the fixture cache",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	sub := func(use, short string, args cobra.PositionalArgs, run func(ctx context.Context, s *session, cfg *config.Config, args []string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: args,
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := pf.check(); err != nil {
					return err
				}
				s := &session{env: env, pf: pf, rf: &runFlags{}}
				cfg, err := s.loadConfig(true)
				if err != nil {
					return err
				}
				return run(cmd.Context(), s, cfg, args)
			},
		}
	}
	cmd.AddCommand(
		sub("list", "List the cache entries", cobra.NoArgs, func(_ context.Context, s *session, cfg *config.Config, _ []string) error {
			c := fixture.New(cfg.CacheDir())
			entries, err := c.Entries()
			exists := !errors.Is(err, fs.ErrNotExist)
			if err != nil && exists {
				return err
			}
			return writeLines(s.env.Stdout, fixture.ListLines(c.Dir(), entries, exists))
		}),
		sub("clean", "Remove every cache entry", cobra.NoArgs, func(_ context.Context, s *session, cfg *config.Config, _ []string) error {
			res, err := fixture.New(cfg.CacheDir()).Clean()
			exists := !errors.Is(err, fs.ErrNotExist)
			if err != nil && exists {
				return err
			}
			out, errLines := fixture.CleanLines(res, exists)
			if err := writeLines(s.env.Stderr, errLines); err != nil {
				return err
			}
			return writeLines(s.env.Stdout, out)
		}),
		sub("stale", "List fixtures without a cache entry", cobra.NoArgs, func(_ context.Context, s *session, cfg *config.Config, _ []string) error {
			set, err := s.fixtureSet(cfg)
			if err != nil {
				return err
			}
			fx := s.keyOnly(cfg, set.Roots)
			var stale []string
			for _, f := range set.Fixtures {
				key, err := fx.Keyer.Key(f.Name)
				if err != nil {
					return err
				}
				if _, ok := fx.Cache.Lookup(key); !ok {
					stale = append(stale, f.Display)
				}
			}
			return writeLines(s.env.Stdout, fixture.StaleLines(stale))
		}),
		sub("build P", "Build a fixture into the cache unless present", cobra.ExactArgs(1), func(ctx context.Context, s *session, cfg *config.Config, args []string) error {
			return s.buildFixture(ctx, cfg, args[0], false)
		}),
		sub("rebuild P", "Evict a fixture's entry and build it again", cobra.ExactArgs(1), func(ctx context.Context, s *session, cfg *config.Config, args []string) error {
			return s.buildFixture(ctx, cfg, args[0], true)
		}),
	)
	return cmd
}

func writeLines(w io.Writer, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}

// fixtureSet discovers the effective roots and their fixtures.
func (s *session) fixtureSet(cfg *config.Config) (*discover.Set, error) {
	set, err := discover.Discover(discover.Options{Roots: cfg.Roots, Cwd: s.env.Cwd})
	if err != nil {
		return nil, err
	}
	for _, w := range set.Warnings {
		s.notice("warning: %s", w)
	}
	return set, nil
}

// keyOnly is a fixture runtime for keying without booting: the platform
// item uses the configured accel as is.
func (s *session) keyOnly(cfg *config.Config, roots []string) *runner.Fixtures {
	value, _, _ := cfg.Accel(s.pf.accel)
	return s.openFixtures(context.Background(), cfg, roots, value, false)
}

// fixtureName maps P (a name, or the path of a *.fixture.lua under a root)
// to the fixture's name; missing → the A1 not-found error.
func (s *session) fixtureName(set *discover.Set, p string) (string, error) {
	if strings.HasSuffix(p, ".fixture.lua") {
		if abs, err := filepath.Abs(s.env.resolve(p)); err == nil {
			if name, ok := fixture.NameOf(set.Roots, abs); ok {
				return name, nil
			}
		}
	}
	name, err := fixture.NormalizeName(p)
	if err != nil {
		return "", err
	}
	if _, err := fixture.Resolve(set.Roots, name); err != nil {
		return "", err
	}
	return name, nil
}

// buildFixture is `provium fixture build|rebuild P`; a signal (ctx) stops
// the build and tears its VMs down.
func (s *session) buildFixture(ctx context.Context, cfg *config.Config, p string, rebuild bool) error {
	requested, err := s.checkEnvironment(ctx, cfg)
	if err != nil {
		return err
	}
	set, err := s.fixtureSet(cfg)
	if err != nil {
		return err
	}
	name, err := s.fixtureName(set, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.CacheDir(), 0o755); err != nil {
		return fmt.Errorf("fixture cache: %w", err)
	}
	fx := s.openFixtures(ctx, cfg, set.Roots, requested, true)
	backend := s.guestBackend(cfg, requested, s.profileBuilds(cfg, nil), guest.Hooks{})
	defer backend.Close()
	opts := &runner.Options{Config: cfg, Roots: set.Roots, Seed: s.seed, Backend: backend.ForFile, Fixtures: fx}
	kind, path, built, err := runner.EnsureFixture(ctx, opts, name, rebuild)
	if err != nil {
		return err
	}
	var lines []string
	if rebuild {
		lines = fixture.RebuildLines(name, kind, path)
	} else {
		lines = []string{fixture.BuildLine(kind, path, !built)}
	}
	return writeLines(s.env.Stdout, lines)
}
