package guest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/provium/provium/internal/vmm"
)

// consoleSockName is the socket re-serving a machine's serial console, in
// its scratch directory (short: unix socket paths are limited).
const consoleSockName = "con.sock"

// consoleServer re-serves the serial console on a unix socket: each client
// reads what the guest prints from the moment it connected, and what it
// writes is typed into the guest's console (vm:console_socket_path).
type consoleServer struct {
	path string
	ln   net.Listener
	wg   sync.WaitGroup
}

// ConsoleSocket returns the path of the machine's console socket, starting
// it on first use. It ends with the machine.
func (g *Machine) ConsoleSocket() (string, error) {
	g.conMu.Lock()
	defer g.conMu.Unlock()
	if g.con != nil {
		return g.con.path, nil
	}
	select {
	case <-g.exit:
		return "", errors.New("the machine has exited")
	default:
	}
	path := filepath.Join(g.vm.Config().Scratch, consoleSockName)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", err
	}
	_ = os.Chmod(path, 0o600)
	cs := &consoleServer{path: path, ln: ln}
	g.con = cs
	ctx, cancel := context.WithCancel(context.Background())
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		defer cancel()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cs.wg.Add(1)
			go func() {
				defer cs.wg.Done()
				serveConsole(ctx, c, g.vm.Console())
			}()
		}
	}()
	go func() {
		<-g.exit
		g.closeConsoleSocket()
	}()
	return path, nil
}

// closeConsoleSocket stops the console server and disconnects its clients.
func (g *Machine) closeConsoleSocket() {
	g.conMu.Lock()
	cs := g.con
	g.conMu.Unlock()
	if cs == nil {
		return
	}
	cs.ln.Close()
}

// serveConsole copies the console to c from now on, and c to the guest.
func serveConsole(ctx context.Context, c net.Conn, con *vmm.Console) {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(con, c) // typing into the guest until the client hangs up
		cancel()
	}()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	off := con.Offset()
	for {
		data, next, err := con.ReadSince(ctx, off)
		if len(data) > 0 {
			if _, werr := c.Write(data); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		off = next
	}
}
