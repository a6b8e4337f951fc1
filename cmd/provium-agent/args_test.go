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
	const none, toStdout, toStderr = 0, 1, 2
	cases := []struct {
		argv  []string
		want  command
		code  int
		usage int // where the usage went
	}{
		{argv: []string{"/usr/bin/provium-agent"}, want: command{action: actionServePort, chain: true}},
		{argv: []string{"provium-agent", "--serve-port"}, want: command{action: actionServePort}},
		{argv: []string{"provium-agent", "--serve-port", "--chain", "--restarted"}, want: command{action: actionServePort, chain: true, restarted: true}},
		{argv: []string{"provium-agent", "--serve-stdio"}, want: command{action: actionServeStdio}},
		{argv: []string{"provium-agent", "--serve-unix", "/tmp/a.sock"}, want: command{action: actionServeUnix, unixPath: "/tmp/a.sock"}},
		{argv: []string{"provium-agent", "--version"}, want: command{action: actionVersion}},
		// Upstream's agent: --help prints the usage on stdout and exits 0
		// (the corpus runs it as a harmless exec and wants exit_code 0).
		{argv: []string{"provium-agent", "--help"}, want: command{action: actionExit}, usage: toStdout},
		{argv: []string{"provium-agent", "-h"}, want: command{action: actionExit}, usage: toStdout},
		// Upstream's --port N (and -p N): listen there until killed.
		{argv: []string{"provium-agent", "--port", "7250"}, want: command{action: actionListenPort, port: 7250}},
		{argv: []string{"provium-agent", "-p", "9931"}, want: command{action: actionListenPort, port: 9931}},
		{argv: []string{"provium-agent", "--port=4294967295"}, want: command{action: actionListenPort, port: 4294967295}},
		{argv: []string{"provium-agent", "--port", "4294967296"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--port", "-1"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--port"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--port", "7250", "--serve-port"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--port", "7250", "--chain"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--serve-stdio", "--version"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--serve-prot"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "--chain"}, want: command{action: actionExit}, code: 2, usage: toStderr},
		{argv: []string{"provium-agent", "serve"}, want: command{action: actionExit}, code: 2, usage: toStderr},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		got, code := parseArgs(c.argv, &stdout, &stderr)
		if got != c.want || code != c.code {
			t.Errorf("parseArgs(%q) = %+v, %d; want %+v, %d", c.argv, got, code, c.want, c.code)
		}
		where := none
		if isUsage(stdout.String()) {
			where = toStdout
		}
		if isUsage(stderr.String()) {
			where += toStderr
		}
		if where != c.usage {
			t.Errorf("parseArgs(%q) printed the usage to %d (0 nowhere, 1 stdout, 2 stderr), want %d\nstdout: %s\nstderr: %s",
				c.argv, where, c.usage, stdout.String(), stderr.String())
		}
		if c.usage == toStdout && stderr.Len() != 0 {
			t.Errorf("parseArgs(%q) wrote to stderr: %s", c.argv, stderr.String())
		}
	}
}

func isUsage(s string) bool {
	return strings.Contains(s, "usage: provium-agent") && strings.Contains(s, "With no arguments the agent serves") &&
		strings.Contains(s, "-port N")
}
