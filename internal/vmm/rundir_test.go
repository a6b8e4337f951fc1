package vmm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRunDirAndSweep(t *testing.T) {
	root := t.TempDir()

	// A pid that certainly is dead: a child we started and reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(root, "run-"+strconv.Itoa(cmd.Process.Pid))
	other := filepath.Join(root, "not-a-run")
	for _, d := range []string{dead, other} {
		if err := os.MkdirAll(filepath.Join(d, "m1"), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	rd, err := NewRunDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "run-"+strconv.Itoa(os.Getpid())); rd.Path != want {
		t.Errorf("run dir %q, want %q", rd.Path, want)
	}
	a, b := rd.NewMachineDir(), rd.NewMachineDir()
	if a == b || !strings.HasPrefix(a, rd.Path+"/") {
		t.Errorf("machine dirs %q, %q", a, b)
	}

	removed, err := SweepDeadRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != dead {
		t.Errorf("removed %q, want only %q", removed, dead)
	}
	for _, keep := range []string{rd.Path, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was swept: %v", keep, err)
		}
	}
	if err := rd.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rd.Path); !os.IsNotExist(err) {
		t.Errorf("run dir still there: %v", err)
	}
	if removed, err := SweepDeadRuns(filepath.Join(root, "absent")); err != nil || removed != nil {
		t.Errorf("absent root: %v %v", removed, err)
	}
}
