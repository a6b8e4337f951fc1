package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// newPrepareCmd is `provium prepare [PROFILE]` (20-cli-config.md §6): the
// profiles' `build` commands and nothing else, for PROFILE or for every
// profile that has one.
func newPrepareCmd(env *Env, pf *persistentFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "prepare [PROFILE]",
		Short: "Run the profiles' build commands only (PROFILE, or every profile with one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			s := &session{env: env, pf: pf}
			cfg, err := s.loadConfig(true)
			if err != nil {
				return err
			}
			names := cfg.ProfileNames()
			if len(args) == 1 {
				if _, ok := cfg.Profiles[args[0]]; !ok {
					fmt.Fprintf(env.Stderr, "provium prepare: profile `%s` not found in provium.toml\n", args[0])
					return exitCode(ExitUsage)
				}
				names = args
			}
			// Output is streamed only under -v; the log file always has it.
			var verbose io.Writer
			if pf.verbose {
				verbose = env.Stderr
			}
			build := s.profileBuilds(cfg, verbose)
			for _, name := range names {
				if cfg.Profiles[name].Build == "" {
					continue
				}
				if err := build(cmd.Context(), name); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
