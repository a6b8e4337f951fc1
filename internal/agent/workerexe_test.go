package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// Without provium-worker beside the agent, spawn_worker says so with the
// marker the host answers; after the host's copy arrives the agent runs
// workers from a sealed memfd.
func TestWorkerExeFromTheHost(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), WorkerExeName)); err == nil {
		t.Skip("a provium-worker sits beside the test binary")
	}
	var s Server
	_, err = s.workerExe()
	pe, ok := err.(*proto.Error)
	if !ok || !strings.HasPrefix(pe.Message, proto.NoWorkerExe) || pe.Errno != int(unix.ENOENT) {
		t.Fatalf("workerExe without an executor: %#v", err)
	}
	if err := s.installWorkerExe([]byte("#!/bin/sh\necho no\n")); err == nil {
		t.Fatal("a script was accepted as the worker executor")
	}
	bin, err := os.ReadFile("/bin/true")
	if err != nil || !strings.HasPrefix(string(bin), "\x7fELF") {
		t.Skipf("no ELF /bin/true to stand in for the executor: %v", err)
	}
	if err := s.installWorkerExe(bin); err != nil {
		t.Fatal(err)
	}
	exe, err := s.workerExe()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe).CombinedOutput(); err != nil {
		t.Fatalf("run %s: %v %s", exe, err, out)
	}
	// Sealed: nobody changes the executor under later workers.
	f, err := os.OpenFile(exe, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write([]byte("x"))
		f.Close()
	}
	if err == nil {
		t.Fatal("the installed executor is writable")
	}
	// A second copy (a racing spawn) keeps the first.
	if err := s.installWorkerExe(bin); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.workerExe(); again != exe {
		t.Fatalf("executor moved from %s to %s", exe, again)
	}
	s.workerMem.Close()
}
