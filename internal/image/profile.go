package image

import (
	"fmt"
	"strings"
)

// profileSnippet renders the [profiles.linux] block `provium image build`
// prints on stdout, so `provium image build >> provium.toml` works.
func profileSnippet(kernel, initrdPath string) string {
	var b strings.Builder
	b.WriteString("[profiles.linux]\n")
	fmt.Fprintf(&b, "kernel = %s\n", tomlString(kernel))
	fmt.Fprintf(&b, "initrd = %s\n", tomlString(initrdPath))
	fmt.Fprintf(&b, "cmdline = %s\n", tomlString(Cmdline))
	b.WriteString("guest_os = \"linux\"\n")
	return b.String()
}

// tomlString quotes s as a TOML basic string. (Go's %q is not TOML: it
// may emit \x escapes TOML rejects.)
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
