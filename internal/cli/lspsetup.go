package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/lspsetup"
)

func newLSPSetupCmd(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "lsp-setup [DIR]",
		Short: "Write editor type stubs and a .luarc.json",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			err := lspsetup.Run(env.resolve(dir), force, env.Stdout)
			var nd *lspsetup.NotDirectoryError
			if errors.As(err, &nd) {
				return fmt.Errorf("`%s` is not a directory", dir)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing .luarc.json")
	return cmd
}
