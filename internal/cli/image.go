package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/image"
)

// newImageCmd is `provium image`, the parent of `image build`.
func newImageCmd(env *Env, pf *persistentFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the default Linux guest image",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newImageBuildCmd(env, pf))
	return cmd
}

// imageBuildFlags are the flags of `provium image build`.
type imageBuildFlags struct {
	out      string
	force    bool
	fromDebs string
}

// newImageBuildCmd is `provium image build [--out DIR] [--force]
// [--from-debs DIR]` (20-cli-config.md §6): progress on stderr, and on
// stdout only the `[profiles.linux]` block so `>> provium.toml` works.
func newImageBuildCmd(env *Env, pf *persistentFlags) *cobra.Command {
	fl := &imageBuildFlags{}
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the default Linux guest image and print its profile",
		Long: "Builds the default Linux guest (Debian kernel as PVH vmlinux, virtio modules,\n" +
			"busybox-static) into --out (default ~/.cache/provium/image) and prints the\n" +
			"[profiles.linux] block on stdout: `provium image build >> provium.toml`.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("image build: unexpected argument `%s`", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			return runImageBuild(cmd, env, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.out, "out", "", "output `DIR` (default ~/.cache/provium/image)")
	f.BoolVar(&fl.force, "force", false, "rebuild even when a complete image is present")
	f.StringVar(&fl.fromDebs, "from-debs", "", "take the kernel and busybox-static .debs from `DIR` instead of apt-get download")
	return cmd
}

func runImageBuild(cmd *cobra.Command, env *Env, fl *imageBuildFlags) error {
	out := fl.out
	if out == "" {
		dir, err := defaultImageDir(env)
		if err != nil {
			return err
		}
		out = dir
	}
	opts := image.Options{
		Out:      env.resolve(out),
		Force:    fl.force,
		Progress: env.Stderr,
	}
	if fl.fromDebs != "" {
		opts.FromDebs = env.resolve(fl.fromDebs)
	}
	res, err := image.Build(cmd.Context(), opts)
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	_, err = fmt.Fprint(env.Stdout, res.Profile)
	return err
}

// defaultImageDir is $XDG_CACHE_HOME/provium/image, else
// $HOME/.cache/provium/image, read through the invocation's environment.
func defaultImageDir(env *Env) (string, error) {
	if x := env.getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "provium", "image"), nil
	}
	home := env.getenv("HOME")
	if home == "" {
		return "", errors.New("image build: neither $XDG_CACHE_HOME nor $HOME is set; pass --out DIR")
	}
	return filepath.Join(home, ".cache", "provium", "image"), nil
}
