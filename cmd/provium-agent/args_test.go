package main

import (
	"bytes"
	"strings"
	"testing"
)

// An image's init that copied the agent out of $PROVIUM_OVERLAY starts it
// with no arguments at all; that must serve the port (and load its modules
// once /sys is there), while a wrong flag still prints the usage.
func TestParseArgs(t *testing.T) {
	cases := []struct {
		argv      []string
		want      command
		code      int
		wantUsage bool
	}{
		{argv: []string{"/usr/bin/provium-agent"}, want: command{action: actionServePort, chain: true}},
		{argv: []string{"provium-agent", "--serve-port"}, want: command{action: actionServePort}},
		{argv: []string{"provium-agent", "--serve-port", "--chain", "--restarted"}, want: command{action: actionServePort, chain: true, restarted: true}},
		{argv: []string{"provium-agent", "--serve-stdio"}, want: command{action: actionServeStdio}},
		{argv: []string{"provium-agent", "--serve-unix", "/tmp/a.sock"}, want: command{action: actionServeUnix, unixPath: "/tmp/a.sock"}},
		{argv: []string{"provium-agent", "--version"}, want: command{action: actionVersion}},
		{argv: []string{"provium-agent", "--help"}, want: command{action: actionExit}, wantUsage: true},
		{argv: []string{"provium-agent", "--serve-prot"}, want: command{action: actionExit}, code: 2, wantUsage: true},
		{argv: []string{"provium-agent", "--chain"}, want: command{action: actionExit}, code: 2, wantUsage: true},
		{argv: []string{"provium-agent", "serve"}, want: command{action: actionExit}, code: 2, wantUsage: true},
	}
	for _, c := range cases {
		var out bytes.Buffer
		got, code := parseArgs(c.argv, &out)
		if got != c.want || code != c.code {
			t.Errorf("parseArgs(%q) = %+v, %d; want %+v, %d", c.argv, got, code, c.want, c.code)
		}
		usage := strings.Contains(out.String(), "With no arguments the agent serves")
		if usage != c.wantUsage {
			t.Errorf("parseArgs(%q) printed usage %v, want %v:\n%s", c.argv, usage, c.wantUsage, out.String())
		}
	}
}
