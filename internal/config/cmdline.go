package config

import (
	"fmt"
	"os"
	"strings"
)

// Kernel command line composition (20-cli-config.md §7.5).
const (
	consoleParam       = "console=ttyS0"
	agentRdinit        = "/sbin/provium-agent"
	rdinitPrefix       = "rdinit="
	errRdinitConflict  = "profile `%s`: cmdline sets rdinit=%s, which conflicts with agent injection; remove it or set inject_agent = false"
	errReadCmdlineFile = "profile `%s`: read cmdline_file `%s`: %w"
)

// BaseCmdline is the profile's base command line: the cmdline_file contents
// with whitespace collapsed, then the inline cmdline (last, so it wins for
// last-wins parameters). The file is read now, at boot, because a build may
// have just produced it.
func (p *Profile) BaseCmdline() (string, error) {
	var parts []string
	if p.CmdlineFile != "" {
		data, err := os.ReadFile(p.CmdlineFile)
		if err != nil {
			return "", fmt.Errorf(errReadCmdlineFile, p.Name, p.CmdlineFile, bareIOError(err))
		}
		if s := strings.Join(strings.Fields(string(data)), " "); s != "" {
			parts = append(parts, s)
		}
	}
	if s := strings.TrimSpace(p.Cmdline); s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, " "), nil
}

// ComposeCmdline builds the final command line from a base: replace (the
// boot option kernel_cmdline), when non-nil, substitutes the base;
// appendStr (kernel_cmdline_append) extends it. console=ttyS0 is added
// unless that exact token is already there, as upstream does: the last
// console= names /dev/console, and the serial console is what Provium
// captures, so a profile asking for console=hvc0 still gets its console
// output captured (the kernel logs to every console= it was given); rdinit=/sbin/provium-agent is added when injecting the
// agent, and any other rdinit= is refused then.
func ComposeCmdline(profileName, base string, replace *string, appendStr string, injectAgent bool) (string, error) {
	cmd := strings.TrimSpace(base)
	if replace != nil {
		cmd = strings.TrimSpace(*replace)
	}
	if a := strings.TrimSpace(appendStr); a != "" {
		cmd = joinParams(cmd, a)
	}
	hasConsole, hasAgentRdinit := false, false
	for _, tok := range strings.Fields(cmd) {
		if tok == consoleParam {
			hasConsole = true
		}
		if v, ok := strings.CutPrefix(tok, rdinitPrefix); ok && injectAgent {
			if v != agentRdinit {
				return "", fmt.Errorf(errRdinitConflict, profileName, v)
			}
			hasAgentRdinit = true
		}
	}
	if !hasConsole {
		cmd = joinParams(cmd, consoleParam)
	}
	if injectAgent && !hasAgentRdinit {
		cmd = joinParams(cmd, rdinitPrefix+agentRdinit)
	}
	return cmd, nil
}

func joinParams(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
