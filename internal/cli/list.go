package cli

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"
)

// newListCmd is `provium list [PATHS] [--fixtures]`: run-mode discovery
// (with --filter and --shard), no Lua.
func newListCmd(env *Env, pf *persistentFlags) *cobra.Command {
	rf := &runFlags{}
	var fixtures bool
	cmd := &cobra.Command{
		Use:   "list [PATHS]...",
		Short: "List the discovered test files (or fixtures)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			s := &session{env: env, pf: pf, rf: rf, paths: args}
			spec, err := parseShard(rf.shard)
			if err != nil {
				return err
			}
			s.shard = spec
			return s.list(fixtures)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fixtures, "fixtures", false, "list fixtures instead of test files")
	f.StringArrayVar(&rf.filters, "filter", nil, "keep files whose path contains `STR` (repeatable, OR)")
	f.StringVar(&rf.shard, "shard", "", "list shard `I/N` of the files")
	return cmd
}

func (s *session) list(fixtures bool) error {
	cfg, err := s.loadConfig(true)
	if err != nil {
		return err
	}
	set, files, err := s.discovery(cfg, true)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if fixtures {
		for _, fx := range set.Fixtures {
			fmt.Fprintf(&b, "  %s\n", fx.Display)
		}
		fmt.Fprintf(&b, "\n%d fixture(s) found\n", len(set.Fixtures))
	} else {
		for _, f := range files {
			fmt.Fprintf(&b, "  %s\n", f.Display)
		}
		fmt.Fprintf(&b, "\n%d test(s) found\n", len(files))
	}
	_, err = s.env.Stdout.Write(b.Bytes())
	return err
}
