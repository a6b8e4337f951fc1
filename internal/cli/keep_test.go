package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/guesttest"
)

// openPTY returns a new pseudo-terminal pair (master, slave).
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	return m, s
}

func waitOutput(t *testing.T, what string, w *syncBuffer, re *regexp.Regexp, d time.Duration, exited ...<-chan struct{}) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		for _, e := range exited {
			select {
			case <-e:
				t.Fatalf("the process ended before %s; output:\n%s", what, w.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; output so far:\n%s", what, w.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --keep-failed keeps a failed test's VM; `repl --attach` in a terminal
// (a pty) runs a command in it; Ctrl-C (SIGINT) in the first process tears
// it down, exits with the run's code and leaves no QEMU behind.
func TestKeepFailedAndAttach(t *testing.T) {
	guesttest.Image(t)
	bin := buildBinary(t)
	dir := writeTree(t, map[string]string{"fail.test.lua": `
test("fails with a vm", function(t)
  local v = provium:vm("k", "linux", {memory = "256M", agent_timeout = 240}):boot()
  v:run("echo KEPT-CONSOLE > /dev/console")
  t:assert_eq(1, 2)
end)`})
	in := newInvocation(t, dir)
	cacheHome, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	in.vars["XDG_CACHE_HOME"] = cacheHome // the default image is reused
	// The binary is outside the checkout: name the guest binaries.
	loc := &agentbin.Locator{}
	agent, err := loc.Path(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	worker, err := loc.WorkerPath(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in.vars[agentbin.EnvAgent], in.vars[agentbin.EnvWorker] = agent, worker
	scratch := in.vars["XDG_RUNTIME_DIR"]

	keepCmd := exec.Command(bin, "--keep-failed", "-v")
	keepCmd.Dir = dir
	keepCmd.Env = binaryEnv(t, in)
	var keepOut, keepErr syncBuffer
	keepCmd.Stdout, keepCmd.Stderr = &keepOut, &keepErr
	if err := keepCmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	keepDone := make(chan struct{})
	go func() { err := keepCmd.Wait(); close(keepDone); exited <- err }()
	defer func() {
		if keepCmd.ProcessState == nil {
			keepCmd.Process.Kill()
			<-exited
		}
	}()

	func() {
		defer func() {
			if t.Failed() {
				t.Logf("keeping process stdout:\n%s", keepOut.String())
			}
		}()
		waitOutput(t, "the keeping notice", &keepErr, regexp.MustCompile(`provium: keeping 1 VM\(s\) of failed tests; press Ctrl-C to tear down`), 5*time.Minute, keepDone)
	}()
	out := keepOut.String()
	if !strings.Contains(out, "kept vm `k` of fail.test.lua, test `fails with a vm`") {
		t.Fatalf("kept list:\n%s", out)
	}
	consoleSock := regexp.MustCompile(`console: (\S+) \(serial, read/write: socat -,raw,echo=0 UNIX-CONNECT:`).FindStringSubmatch(out)
	attach := regexp.MustCompile(`repl:    provium repl --attach (\S+) --name k\n`).FindStringSubmatch(out)
	if consoleSock == nil || attach == nil {
		t.Fatalf("no console socket or repl line:\n%s", out)
	}

	// The console socket re-serves the serial console from connect time.
	con, err := netDialUnix(consoleSock[1])
	if err != nil {
		t.Fatalf("console socket: %v", err)
	}
	defer con.Close()
	var conOut syncBuffer
	go io.Copy(&conOut, con)
	if _, err := con.Write([]byte("\n")); err != nil { // typing into the guest is accepted
		t.Fatalf("console socket write: %v", err)
	}

	// The REPL, in a terminal.
	master, slave := openPTY(t)
	defer master.Close()
	repl := exec.Command(bin, "repl", "--attach", attach[1], "--name", "k")
	repl.Dir = dir
	repl.Env = binaryEnv(t, in)
	repl.Stdin, repl.Stdout, repl.Stderr = slave, slave, slave
	repl.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := repl.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var term syncBuffer
	go io.Copy(&term, master)
	waitOutput(t, "the attach banner", &term, regexp.MustCompile("attached to VM `k`"), time.Minute)
	waitOutput(t, "the prompt", &term, regexp.MustCompile(`provium> `), time.Minute)
	master.Write([]byte(`vm:run("echo hi").stdout` + "\r"))
	waitOutput(t, "hi from the kept VM", &term, regexp.MustCompile(`(?m)^hi\r?$`), 2*time.Minute)
	master.Write([]byte(`vm:run("echo VIA-CONSOLE-SOCKET > /dev/console").exit_code` + "\r"))
	waitOutput(t, "console output on the console socket", &conOut, regexp.MustCompile(`VIA-CONSOLE-SOCKET`), time.Minute)
	if strings.Contains(conOut.String(), "KEPT-CONSOLE") {
		t.Errorf("the console socket replayed output from before the client connected")
	}
	master.Write([]byte(`vm:stat("/etc/hosts")` + "\r"))
	waitOutput(t, "stat as fields", &term, regexp.MustCompile(`(?s)\{\r?\n  entry_type = "file",.*size = \d+,`), time.Minute)
	master.Write([]byte("exit()\r"))
	replDone := make(chan error, 1)
	go func() { replDone <- repl.Wait() }()
	select {
	case err := <-replDone:
		if err != nil {
			t.Errorf("repl: %v\n%s", err, term.String())
		}
	case <-time.After(time.Minute):
		repl.Process.Kill()
		t.Fatalf("repl did not exit:\n%s", term.String())
	}

	// Ctrl-C in the keeping process: teardown, the run's exit code (1).
	if len(qemuUnder(scratch)) == 0 {
		t.Fatal("the kept VM's QEMU is not running")
	}
	keepCmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("keeping process ended with %v, want exit status 1\nstderr:\n%s", err, keepErr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("keeping process did not end after SIGINT:\n%s", keepErr.String())
	}
	assertNothingLeft(t, scratch)
}

func netDialUnix(path string) (*net.UnixConn, error) {
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
}

// Under --watch the kept VM stays up until the next iteration starts.
func TestKeepFailedUnderWatch(t *testing.T) {
	in, scratch := vmSuite(t, map[string]string{"w.test.lua": `
test("fails with a vm", function(t)
  local v = provium:vm("kw", "linux", {memory = "256M", agent_timeout = 240}):boot()
  t:assert_eq(1, 2)
end)`})
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- Execute(ctx, in.env(&out, &errb), []string{"--watch", "--keep-failed"}) }()
	defer func() {
		cancel()
		<-done
		assertNothingLeft(t, scratch)
	}()
	waitOutput(t, "the keeping notice", &errb, regexp.MustCompile(`keeping 1 VM\(s\) of failed tests`), 5*time.Minute)
	if !strings.Contains(out.String(), "kept vm `kw` of w.test.lua") || len(qemuUnder(scratch)) != 1 {
		t.Fatalf("kept: %d QEMU\n%s", len(qemuUnder(scratch)), out.String())
	}
	if err := os.WriteFile(in.cwd+"/w.test.lua", []byte(`test("passes", function(t) end)`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, "the second run", &out, regexp.MustCompile(`1 file\(s\); 1 passed`), 5*time.Minute)
	if !strings.Contains(errb.String(), "tore down 1 kept VM(s)") {
		t.Errorf("the kept VM was not torn down:\n%s", errb.String())
	}
	if n := len(qemuUnder(scratch)); n != 0 {
		t.Errorf("%d QEMU still running after the next iteration", n)
	}
}
