package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// persistentFlags are accepted by run mode and every subcommand.
type persistentFlags struct {
	config      string
	vmm         string
	accel       string
	verbose     bool
	quiet       bool
	noPreflight bool
	noBuild     bool
}

// Execute runs the command line args (without the program name) and
// returns the process exit code.
func Execute(ctx context.Context, env Env, args []string) int {
	root := NewRoot(&env)
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return codeOf(err, env.Stderr)
}

// NewRoot builds the command tree: the root command is run mode.
func NewRoot(env *Env) *cobra.Command {
	pf := &persistentFlags{}
	rf := &runFlags{}
	root := &cobra.Command{
		Use:   "provium [PATHS]...",
		Short: "Run Lua tests against real QEMU guests",
		Long: "provium discovers *.test.lua files under PATHS (or the configured roots, or the\n" +
			"current directory) and runs them, each file in its own Lua 5.4 state.",
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versionString(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMode(cmd.Context(), env, cmd, pf, rf, args)
		},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })

	p := root.PersistentFlags()
	p.StringVar(&pf.config, "config", "", "config file (default ./provium.toml)")
	p.StringVar(&pf.vmm, "vmm", "qemu", "VM backend (only qemu)")
	p.StringVar(&pf.accel, "accel", "", "acceleration: auto, kvm or tcg (default auto)")
	p.BoolVarP(&pf.verbose, "verbose", "v", false, "also PASS/SKIP lines; per-VM diagnostics on stderr")
	p.BoolVarP(&pf.quiet, "quiet", "q", false, "failures only")
	p.BoolVar(&pf.noPreflight, "no-preflight", false, "skip the environment checks before running")
	p.BoolVar(&pf.noBuild, "no-build", false, "skip profile build commands")

	rf.register(root)

	root.AddCommand(
		newListCmd(env, pf),
		newPrepareCmd(env, pf),
		newImageCmd(env, pf),
		newLSPSetupCmd(env),
		newFixtureCmd(env, pf),
		newReplCmd(env, pf),
		newVersionCmd(env),
		newDoctorCmd(env, pf),
	)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })
	}
	return root
}

// check validates the persistent flags every command shares.
func (pf *persistentFlags) check() error {
	if pf.quiet && pf.verbose {
		return usagef("%s", msgConflict)
	}
	switch pf.vmm {
	case "qemu":
	case "local":
		return errors.New(msgNoLocal)
	default:
		return usagef("--vmm: expected `qemu`, got `%s`", pf.vmm)
	}
	return nil
}
