package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/guest"
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
	opts.ProfileEnv = func(ctx context.Context, p *config.Profile) ([]string, error) {
		return overlayEnv(ctx, p, filepath.Join(cfg.ScratchDir(), "agent-overlay"))
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

// overlayEnv points a profile's build at an agent overlay file
// (PROVIUM_OVERLAY), as upstream's builds find one: the profile's
// agent_overlay_path, else the caller's own PROVIUM_OVERLAY (inherited
// as is), else the overlay of the agent this run injects, written to dir.
func overlayEnv(ctx context.Context, p *config.Profile, dir string) ([]string, error) {
	switch {
	case p.AgentOverlayPath != "":
		return []string{guest.EnvOverlay + "=" + p.AgentOverlayPath}, nil
	case os.Getenv(guest.EnvOverlay) != "":
		return nil, nil
	}
	path, err := guest.OverlayFile(ctx, &agentbin.Locator{}, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", guest.EnvOverlay, err)
	}
	return []string{guest.EnvOverlay + "=" + path}, nil
}
