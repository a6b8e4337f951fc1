// Command provium-agent is the Provium guest agent: a static binary
// injected into the guest initrd as /sbin/provium-agent and started as
// PID 1 (rdinit=). It serves the host over the virtio-serial port named
// org.provium.agent.0. An image's own init may instead start it with no
// arguments as an ordinary process; it then serves the same port. For
// development it can also serve one session on stdio or sessions on a
// unix socket on the host.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/provium/provium/internal/agent"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "provium-agent: "+format+"\n", args...)
}

func newServer() *agent.Server {
	return &agent.Server{AgentVersion: version, Logf: logf}
}

func run(argv []string) int {
	// As PID 1 the command line is the kernel's leftovers, not ours.
	if os.Getpid() == 1 {
		return runInit(argv)
	}
	cmd, code := parseArgs(argv, os.Stderr)
	switch cmd.action {
	case actionExit:
		return code
	case actionVersion:
		fmt.Println(version)
		return 0
	case actionServeStdio:
		return serveStdioMain()
	case actionServeUnix:
		return serveUnixMain(cmd.unixPath)
	default:
		return servePortMain(cmd.chain, cmd.restarted)
	}
}

// action is what a non-PID-1 agent was asked to do.
type action int

const (
	actionExit action = iota // usage or a flag error was printed
	actionVersion
	actionServeStdio
	actionServeUnix
	actionServePort
)

// command is the parsed command line of a non-PID-1 agent.
type command struct {
	action    action
	unixPath  string
	chain     bool
	restarted bool
}

// usageText follows the flag list in the usage message.
const usageText = `
With no arguments the agent serves the virtio agent port as it does with
--serve-port --chain: an image's own init may start it as a plain
background process (from its copy of $PROVIUM_OVERLAY) and the host finds
it on the port org.provium.agent.0. As PID 1 (rdinit=) it is the guest's
init and ignores its arguments.
`

// parseArgs reads the flags of a non-PID-1 agent; usage and errors go to
// out. With no arguments at all it serves the port: an image's init that
// starts the agent from its copy of the overlay passes none, and nothing
// has loaded the port's modules for it, so it behaves as --chain does.
func parseArgs(argv []string, out io.Writer) (command, int) {
	if len(argv) <= 1 {
		return command{action: actionServePort, chain: true}, 0
	}
	fs := flag.NewFlagSet("provium-agent", flag.ContinueOnError)
	fs.SetOutput(out)
	serveStdio := fs.Bool("serve-stdio", false, "serve one session on stdin/stdout (development)")
	serveUnix := fs.String("serve-unix", "", "serve sessions on a unix socket at `PATH` (development)")
	servePort := fs.Bool("serve-port", false, "serve the virtio agent port (what no arguments do; the agent as PID 1 starts its server so)")
	chain := fs.Bool("chain", false, "with --serve-port: another init owns the guest; load the port's modules once it has mounted /sys")
	restarted := fs.Bool("restarted", false, "with --serve-port: an earlier server died; end the host's stale session first")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: provium-agent [--serve-port [--chain] [--restarted] | --serve-stdio | --serve-unix PATH | --version]\n")
		fs.PrintDefaults()
		fmt.Fprint(out, usageText)
	}
	if err := fs.Parse(argv[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return command{action: actionExit}, 0
		}
		return command{action: actionExit}, 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(out, "provium-agent: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return command{action: actionExit}, 2
	case *showVersion:
		return command{action: actionVersion}, 0
	case *serveStdio:
		return command{action: actionServeStdio}, 0
	case *serveUnix != "":
		return command{action: actionServeUnix, unixPath: *serveUnix}, 0
	case *servePort:
		return command{action: actionServePort, chain: *chain, restarted: *restarted}, 0
	default:
		fs.Usage()
		return command{action: actionExit}, 2
	}
}

// stdio joins stdin and stdout into one connection.
type stdio struct {
	io.Reader
	io.Writer
}

func (stdio) Close() error {
	os.Stdin.Close()
	return os.Stdout.Close()
}

func serveStdioMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newServer().ServeSession(ctx, stdio{os.Stdin, os.Stdout}); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

func serveUnixMain(path string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logf("remove stale socket: %v", err)
		return 1
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.Remove(path)
	context.AfterFunc(ctx, func() { ln.Close() })
	srv := newServer()
	done := make(chan struct{})
	sessions := 0
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		sessions++
		go func() {
			defer func() { done <- struct{}{} }()
			if err := srv.ServeSession(ctx, conn); err != nil {
				logf("session: %v", err)
			}
		}()
	}
	for ; sessions > 0; sessions-- {
		<-done
	}
	return 0
}
