package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/provium/provium/internal/config"
)

// profileBuilds returns the step that runs a profile's `build` before its
// first boot in this invocation (once per profile, shared by concurrent
// boots; --no-build skips it). Its output goes to
// <scratch>/build-<profile>.log and, with verbose set, to verbose. env
// (KEY=VALUE) is added to the command's environment.
func (s *session) profileBuilds(cfg *config.Config, verbose io.Writer, env ...string) func(context.Context, string) error {
	opts := config.BuildOptions{
		NoBuild: s.pf.noBuild,
		Notice:  s.env.Stderr,
		Verbose: verbose,
		LogPath: func(p string) string { return filepath.Join(cfg.ScratchDir(), "build-"+p+".log") },
	}
	if len(env) > 0 {
		opts.Environ = append(os.Environ(), env...) // later entries win
	}
	builder := config.NewBuilder(cfg, opts)
	return func(ctx context.Context, profile string) error {
		if err := os.MkdirAll(cfg.ScratchDir(), 0o700); err != nil {
			return err
		}
		if p, ok := cfg.Profiles[profile]; ok && p.Implicit {
			return s.implicit.ensure(ctx, s.env.Stderr, s.pf.quiet)
		}
		return builder.Ensure(ctx, profile)
	}
}
