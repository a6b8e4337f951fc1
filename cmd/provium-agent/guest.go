package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agent/guestinit"
	"github.com/provium/provium/internal/agent/kmod"
)

// installedPath is where the initrd overlay puts the agent.
const installedPath = "/sbin/provium-agent"

// defaultPath is given to the agent's environment when the kernel started
// it without one, so commands and their shells find the usual tools.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// selfPath finds our own binary for re-exec. /proc may not be mounted yet,
// so argv[0] (the rdinit= path) comes first.
func selfPath(argv0 string) string {
	if filepath.IsAbs(argv0) {
		if _, err := os.Stat(argv0); err == nil {
			return argv0
		}
	}
	if p, err := os.Executable(); err == nil {
		return p
	}
	return installedPath
}

// absorbSignals catches the signals whose Go default is to exit. PID 1
// must never die (the kernel panics), and the agent is restarted only by
// PID 1. Catching (not ignoring) keeps children at the default disposition
// after exec.
func absorbSignals() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	go func() {
		for range ch {
		}
	}()
}

func runInit(argv []string) int {
	absorbSignals()
	_, err := os.Stat("/init")
	mode := guestinit.DecideMode(argv, err == nil)
	self := selfPath(argv[0])
	if mode == guestinit.Chain {
		// The child serves the port; this process becomes the initrd's own
		// init, untouched, with the kernel's arguments.
		if _, err := startServer(self, true, false); err != nil {
			logf("chain: start agent: %v", err)
		}
		err := syscall.Exec("/init", append([]string{"/init"}, argv[1:]...), os.Environ())
		logf("chain: exec /init: %v; continuing standalone", err)
	}
	standalone(self)
	return 0 // not reached: standalone never returns
}

// standalone performs the init duties and then reaps forever, restarting
// the agent server whenever it dies.
func standalone(self string) {
	bi, biErr := guestinit.LoadBootInfo(guestinit.BootInfoPath)
	// The clock goes first so every later timestamp is the controlled one.
	if bi.InitialTime != nil {
		if err := guestinit.SetClock(*bi.InitialTime); err != nil {
			logf("%v", err)
		}
		bi.InitialTime = nil
	}
	if err := guestinit.MountStandalone(); err != nil {
		logf("mounts: %v", err)
	}
	if err := guestinit.EnableSysrq("/proc"); err != nil {
		logf("%v", err)
	}
	if biErr != nil {
		logf("%v", biErr)
	}
	if err := guestinit.ApplyBootInfo(bi); err != nil {
		logf("boot inputs: %v", err)
	}
	loadModules()
	go watchPowerButton()

	server, err := startServer(self, false, false)
	if err != nil {
		logf("start agent: %v", err)
	}
	restartDelay := 100 * time.Millisecond
	guestinit.Reap(func(pid int, ws unix.WaitStatus) {
		if pid != server {
			return
		}
		logf("agent server %s; restarting", describeExit(ws))
		time.Sleep(restartDelay)
		restartDelay = min(restartDelay*2, 5*time.Second)
		if server, err = startServer(self, false, true); err != nil {
			logf("restart agent: %v", err)
		}
	})
}

func loadModules() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		logf("uname: %v", err)
		return
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
	if _, err := kmod.Coldplug("/sys", dir); err != nil {
		logf("modules: %v", err)
	}
	if err := guestinit.QuietHWRNG("/sys"); err != nil {
		logf("%v", err)
	}
}

// watchPowerButton waits for the button device (its module may still be
// binding) and then powers off on a press.
func watchPowerButton() {
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		if dev, ok := guestinit.FindPowerButton("/sys", "/dev"); ok {
			logf("%v", guestinit.WatchPowerButton(dev))
			return
		}
		if delay >= 5*time.Second {
			return // no ACPI power button on this machine
		}
		time.Sleep(delay)
	}
}

// startServer starts the agent server process; restarted says an earlier
// one died, so the new one first tells a host still in its session.
func startServer(self string, chain, restarted bool) (int, error) {
	args := []string{self, "--serve-port"}
	if chain {
		args = append(args, "--chain")
	}
	if restarted {
		args = append(args, "--restarted")
	}
	return syscall.ForkExec(self, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
}

// restartAnnounceTimeout bounds the restart burst when no host reads.
const restartAnnounceTimeout = 5 * time.Second

// servePortMain is the agent server process: it finds the port and serves
// sessions on it forever, reopening it after a hard error.
func servePortMain(chain, restarted bool) int {
	absorbSignals()
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", defaultPath)
	}
	srv := newServer()
	ctx := context.Background()
	delay := 10 * time.Millisecond
	reported := false
	// In chain mode the agent mounts nothing (the real init may move the
	// root): it waits for the real init's sysfs, then loads modules once.
	modulesLoaded := !chain
	for {
		if !modulesLoaded && sysfsMounted() {
			loadModules()
			modulesLoaded = true
		}
		f, err := guestinit.OpenPort("/sys", "/dev", guestinit.AgentPortName)
		if err == nil && restarted {
			if aerr := guestinit.AnnounceRestart(f, restartAnnounceTimeout); aerr != nil {
				logf("%v", aerr)
			}
			restarted = false
		}
		if err == nil {
			err = guestinit.ServePort(ctx, srv, f)
			f.Close()
			delay = 10 * time.Millisecond
		}
		if err != nil && (!reported || !errors.Is(err, guestinit.ErrPortNotFound)) {
			logf("%v", err)
			reported = true
		}
		time.Sleep(delay)
		delay = min(delay*2, time.Second)
	}
}

func sysfsMounted() bool {
	_, err := os.Stat("/sys/bus")
	return err == nil
}

// describeExit words a wait status for the console.
func describeExit(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}
