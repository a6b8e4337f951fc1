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
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
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
	cmd, code := parseArgs(argv, os.Stdout, os.Stderr)
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
	case actionListenPort:
		return listenPortMain(cmd.port)
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
	actionListenPort
)

// command is the parsed command line of a non-PID-1 agent.
type command struct {
	action    action
	unixPath  string
	chain     bool
	restarted bool
	port      uint32 // actionListenPort: the vsock port
}

// usageText follows the flag list in the usage message.
const usageText = `
With no arguments the agent serves the virtio agent port as it does with
--serve-port --chain: an image's own init may start it as a plain
background process (from its copy of $PROVIUM_OVERLAY) and the host finds
it on the port org.provium.agent.0. As PID 1 (rdinit=) it is the guest's
init and ignores its arguments.

--port N is upstream's command line: the agent listens on vsock port N
and serves sessions there (without vsock it just stays) until it is
killed; the virtio port stays the PID-1 agent's.
`

// parseArgs reads the flags of a non-PID-1 agent. The usage that --help
// asks for goes to stdout (and exits 0); errors and the usage after them go
// to stderr. With no arguments at all it serves the port: an image's init
// that starts the agent from its copy of the overlay passes none, and
// nothing has loaded the port's modules for it, so it behaves as --chain
// does.
func parseArgs(argv []string, stdout, stderr io.Writer) (command, int) {
	if len(argv) <= 1 {
		return command{action: actionServePort, chain: true}, 0
	}
	fs := flag.NewFlagSet("provium-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serveStdio := fs.Bool("serve-stdio", false, "serve one session on stdin/stdout (development)")
	serveUnix := fs.String("serve-unix", "", "serve sessions on a unix socket at `PATH` (development)")
	servePort := fs.Bool("serve-port", false, "serve the virtio agent port (what no arguments do; the agent as PID 1 starts its server so)")
	chain := fs.Bool("chain", false, "with --serve-port: another init owns the guest; load the port's modules once it has mounted /sys")
	restarted := fs.Bool("restarted", false, "with --serve-port: an earlier server died; end the host's stale session first")
	showVersion := fs.Bool("version", false, "print the version and exit")
	var port portFlag
	fs.Var(&port, "port", "listen on vsock port `N` until killed (upstream's command line)")
	fs.Var(&port, "p", "short for --port `N`")
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: provium-agent [--serve-port [--chain] [--restarted] | --serve-stdio | --serve-unix PATH | --port N | --version]\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprint(w, usageText)
	}
	fs.Usage = func() {} // printed below, on the stream that fits
	if err := fs.Parse(argv[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return command{action: actionExit}, 0
		}
		usage(stderr)
		return command{action: actionExit}, 2
	}
	modes := 0
	for _, set := range []bool{*serveStdio, *serveUnix != "", *servePort, port.set, *showVersion} {
		if set {
			modes++
		}
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "provium-agent: unexpected argument %q\n", fs.Arg(0))
		usage(stderr)
		return command{action: actionExit}, 2
	case modes > 1:
		fmt.Fprintln(stderr, "provium-agent: give one of --serve-port, --serve-stdio, --serve-unix, --port and --version")
		usage(stderr)
		return command{action: actionExit}, 2
	case port.set && (*chain || *restarted):
		fmt.Fprintln(stderr, "provium-agent: --chain and --restarted go with --serve-port, not --port")
		usage(stderr)
		return command{action: actionExit}, 2
	case *showVersion:
		return command{action: actionVersion}, 0
	case *serveStdio:
		return command{action: actionServeStdio}, 0
	case *serveUnix != "":
		return command{action: actionServeUnix, unixPath: *serveUnix}, 0
	case *servePort:
		return command{action: actionServePort, chain: *chain, restarted: *restarted}, 0
	case port.set:
		return command{action: actionListenPort, port: port.n}, 0
	default:
		usage(stderr)
		return command{action: actionExit}, 2
	}
}

// portFlag is a vsock port number (32 bits).
type portFlag struct {
	n   uint32
	set bool
}

func (p *portFlag) String() string { return strconv.FormatUint(uint64(p.n), 10) }

func (p *portFlag) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("want a port number from 0 to %d", uint32(math.MaxUint32))
	}
	p.n, p.set = uint32(n), true
	return nil
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
