// Command provium-agent is the Provium guest agent: a static binary
// injected into the guest initrd as /sbin/provium-agent and started as
// PID 1 (rdinit=). It serves the host over the virtio-serial port named
// org.provium.agent.0. For development it can also serve one session on
// stdio or sessions on a unix socket on the host.
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
	fs := flag.NewFlagSet("provium-agent", flag.ContinueOnError)
	serveStdio := fs.Bool("serve-stdio", false, "serve one session on stdin/stdout (development)")
	serveUnix := fs.String("serve-unix", "", "serve sessions on a unix socket at `PATH` (development)")
	servePort := fs.Bool("serve-port", false, "serve the virtio agent port (started by the init process)")
	chain := fs.Bool("chain", false, "with --serve-port: set up a private view of /dev, /proc, /sys first")
	restarted := fs.Bool("restarted", false, "with --serve-port: an earlier server died; end the host's stale session first")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(argv[1:]); err != nil {
		return 2
	}
	switch {
	case *showVersion:
		fmt.Println(version)
		return 0
	case *serveStdio:
		return serveStdioMain()
	case *serveUnix != "":
		return serveUnixMain(*serveUnix)
	case *servePort:
		return servePortMain(*chain, *restarted)
	default:
		fs.Usage()
		return 2
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
