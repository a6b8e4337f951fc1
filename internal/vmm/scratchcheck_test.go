package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckScratchRoot(t *testing.T) {
	ok, err := os.MkdirTemp("", "pvs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ok)
	if err := CheckScratchRoot(filepath.Join(ok, "new")); err != nil {
		t.Errorf("creatable dir: %v", err)
	}

	long := "/tmp/" + strings.Repeat("d", 60)
	err = CheckScratchRoot(long)
	want := "scratch: `" + long + "` is too long for unix socket paths (65 > 64 bytes)"
	var se *ScratchError
	if !errors.As(err, &se) || err.Error() != want || se.Fix() == "" {
		t.Errorf("long dir: got %v, want %q", err, want)
	}

	// A regular file where the directory should be: not creatable, even for root.
	file := filepath.Join(ok, "file")
	os.WriteFile(file, nil, 0o644)
	err = CheckScratchRoot(filepath.Join(file, "sub"))
	if err == nil || !strings.HasPrefix(err.Error(), "scratch: `"+filepath.Join(file, "sub")+"` is not writable: ") {
		t.Errorf("blocked dir: got %v", err)
	}
}
