package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

// buildAgent builds this command the way the initrd gets it: CGO_ENABLED=0.
func buildAgent(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	out := filepath.Join(t.TempDir(), "provium-agent")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestAgentBinary(t *testing.T) {
	bin := buildAgent(t)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Fatalf("agent is dynamically linked (%v program header)", p.Type)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Fatalf("agent imports %v", libs)
		}
	})

	t.Run("serve-stdio", func(t *testing.T) {
		cmd := exec.Command(bin, "--serve-stdio")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		conn := struct {
			io.Reader
			io.WriteCloser
		}{stdout, stdin}
		exercise(t, conn)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("agent exit after the session: %v", err)
		}
	})

	t.Run("help", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "--help")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("--help: %v (stderr %q)", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "usage: provium-agent") || stderr.Len() != 0 {
			t.Fatalf("--help: stdout %q, stderr %q; want the usage on stdout only", stdout.String(), stderr.String())
		}
	})

	t.Run("port", func(t *testing.T) {
		cmd := exec.Command(bin, "--port", "7250")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		// It says where it serves (or that this host has no vsock) once it
		// is ready; it must then still be running, until killed.
		line, err := bufio.NewReader(stderr).ReadString('\n')
		if !strings.Contains(line, "listening on vsock port 7250") && !strings.Contains(line, "no vsock") {
			t.Fatalf("--port 7250 said %q (%v)", line, err)
		}
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("--port 7250 is gone after saying %q: %v", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("--port 7250 after SIGTERM: %v; want killed by the signal", err)
		}
	})

	t.Run("serve-unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "agent.sock")
		cmd := exec.Command(bin, "--serve-unix", sock)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}()
		var conn net.Conn
		var err error
		for i := 0; i < 500; i++ { // the socket appears once the agent started
			if conn, err = net.Dial("unix", sock); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, conn)
		// A second session on the same agent works too.
		conn2, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, conn2)
	})
}

func exercise(t *testing.T, conn io.ReadWriteCloser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := agentclient.Dial(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.Hello(); h.Protocol != proto.ProtocolVersion || h.AgentVersion != "dev" {
		t.Fatalf("hello %+v", h)
	}
	res, err := c.Exec(ctx, proto.ExecReq{Cmd: "echo", Args: []string{"from", "binary"}})
	if err != nil || string(res.Stdout) != "from binary\n" {
		t.Fatalf("exec: %+v %v", res, err)
	}
}
