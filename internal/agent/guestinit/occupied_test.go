package guestinit

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A standalone agent that an earlier stage exec'd must not stack a fresh
// tmpfs over a /run or /tmp that already holds that stage's files.
func TestOccupied(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	full := filepath.Join(root, "full")
	file := filepath.Join(root, "file")
	for _, d := range []string{empty, full} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(full, "late.ran"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{empty, false},
		{full, true},
		{filepath.Join(root, "missing"), false},
	} {
		got, err := Occupied(c.path)
		if err != nil || got != c.want {
			t.Errorf("Occupied(%s) = %v, %v; want %v", c.path, got, err, c.want)
		}
	}
	if _, err := Occupied(file); err == nil {
		t.Errorf("Occupied(%s) on a regular file: no error", file)
	}
}

// An empty directory with a filesystem mounted on it is occupied too.
func TestOccupiedMountPoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if got, err := Occupied(dir); err != nil || !got {
		t.Errorf("Occupied(empty mount point) = %v, %v; want true", got, err)
	}
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_TYPE, &st); err != nil {
		t.Fatal(err)
	}
	if mp, err := crossesDevice(dir, st); err != nil || !mp {
		t.Errorf("crossesDevice(mount point) = %v, %v; want true", mp, err)
	}
	parent := filepath.Dir(dir)
	if err := unix.Statx(unix.AT_FDCWD, parent, 0, unix.STATX_TYPE, &st); err != nil {
		t.Fatal(err)
	}
	if mp, err := crossesDevice(parent, st); err != nil || mp {
		t.Errorf("crossesDevice(plain dir) = %v, %v; want false", mp, err)
	}
}
