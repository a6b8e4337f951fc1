package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/lua"
)

// Set at link time: -ldflags "-X github.com/provium/provium/internal/cli.buildVersion=v1.2.3
// -X github.com/provium/provium/internal/cli.buildCommit=abc123". When
// empty, the Go build info stands in.
var (
	buildVersion string
	buildCommit  string
)

// versionNumber is the version alone (JUnit provium_version).
func versionNumber() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionCommit is the VCS revision the binary was built from.
func versionCommit() string {
	if buildCommit != "" {
		return buildCommit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev + dirty
}

// versionString is `provium <version> (<commit>, <os>/<arch>, <go version>,
// Lua 5.4.<n>)`.
func versionString() string {
	return fmt.Sprintf("provium %s (%s, %s/%s, %s, %s)",
		versionNumber(), versionCommit(), runtime.GOOS, runtime.GOARCH, runtime.Version(), lua.Version())
}

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(env.Stdout, versionString())
			return err
		},
	}
}
