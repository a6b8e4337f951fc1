package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startBareQEMU runs QEMU with no machine at all: the cheapest real QMP peer.
func startBareQEMU(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath(DefaultQEMU); err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	dir, err := os.MkdirTemp("", "pvq")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(DefaultQEMU, "-M", "none", "-nodefaults", "-no-user-config", "-nographic",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if i > 500 {
			t.Fatal("QMP socket never appeared")
		}
		time.Sleep(socketPoll)
	}
}

func TestQMPAgainstQEMU(t *testing.T) {
	sock := startBareQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := DialQMP(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	raw, err := q.Execute(ctx, "query-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Status == "" {
		t.Fatalf("query-status: %s, %v", raw, err)
	}

	_, err = q.Execute(ctx, "no-such-command", nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || qe.Command != "no-such-command" {
		t.Fatalf("unknown command: %v", err)
	}

	// Arguments are passed through.
	raw, err = q.Execute(ctx, "qom-get", map[string]any{"path": "/machine", "property": "type"})
	if err != nil {
		t.Fatalf("qom-get: %v", err)
	}
	var typ string
	if json.Unmarshal(raw, &typ); typ == "" {
		t.Errorf("qom-get returned %s", raw)
	}

	// quit announces itself with SHUTDOWN, then the event stream ends.
	if _, err := q.Execute(ctx, "quit", nil); err != nil && !errors.Is(err, ErrQMPClosed) {
		t.Fatalf("quit: %v", err)
	}
	var reason string
	for ev := range q.Events() {
		if ev.Name == "SHUTDOWN" {
			var d struct{ Reason string }
			json.Unmarshal(ev.Data, &d)
			reason = d.Reason
		}
	}
	if reason != "host-qmp-quit" {
		t.Errorf("SHUTDOWN reason %q, want host-qmp-quit", reason)
	}
	if _, err := q.Execute(ctx, "query-status", nil); !errors.Is(err, ErrQMPClosed) {
		t.Errorf("after quit: %v, want ErrQMPClosed", err)
	}
}

func TestQMPExecuteHonoursContext(t *testing.T) {
	sock := startBareQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := DialQMP(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	done, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := q.Execute(done, "query-status", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Execute: %v", err)
	}
	// The connection is still usable after an abandoned command.
	if _, err := q.Execute(ctx, "query-status", nil); err != nil {
		t.Errorf("after abandoned command: %v", err)
	}
}
