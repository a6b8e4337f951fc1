package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// dirWatch reports the inotify events of the entries of one directory.
type dirWatch struct{ fd int }

func watchDir(t *testing.T, dir string) *dirWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_ATTRIB|unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	return &dirWatch{fd: fd}
}

// drain returns, per entry name, the union of the event masks queued so far.
// The kernel queues an event while the operation runs, so whatever an
// operation that has returned caused is already there.
func (w *dirWatch) drain(t *testing.T) map[string]uint32 {
	t.Helper()
	got := map[string]uint32{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+nameLen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			got[string(name)] |= mask
			off += unix.SizeofInotifyEvent + nameLen
		}
	}
}

func writeVia(t *testing.T, path string, mode *uint32) {
	t.Helper()
	f, err := openForWrite(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func permOf(t *testing.T, path string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

func perm(p uint32) *uint32 { return &p }

// withUmask runs f under umask mask. The tests of this package do not run
// in parallel, so nothing else creates files meanwhile.
func withUmask(mask int, f func()) {
	old := unix.Umask(mask)
	defer unix.Umask(old)
	f()
}

// Creating a file is one open(2) carrying the mode: no chmod follows when
// the umask leaves the mode intact, so nothing changes the new file's
// attributes (no IN_ATTRIB).
func TestOpenForWriteCreatesWithoutChmodWhenTheModeHolds(t *testing.T) {
	dir := t.TempDir()
	w := watchDir(t, dir)
	withUmask(0o022, func() {
		writeVia(t, filepath.Join(dir, "plain"), nil)
		writeVia(t, filepath.Join(dir, "exact"), perm(0o600))
	})
	ev := w.drain(t)
	for name, want := range map[string]uint32{"plain": 0o644, "exact": 0o600} {
		if got := permOf(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: mode %#o, want %#o", name, got, want)
		}
		if ev[name]&unix.IN_CREATE == 0 || ev[name]&unix.IN_CLOSE_WRITE == 0 {
			t.Errorf("%s: events %#x lack IN_CREATE or IN_CLOSE_WRITE (is the watch working?)", name, ev[name])
		}
		if ev[name]&unix.IN_ATTRIB != 0 {
			t.Errorf("%s: attributes changed after creation (events %#x): a chmod followed the open", name, ev[name])
		}
	}
}

// Where the umask clears bits of the wanted mode, fchmod restores them: the
// mode is exact whatever the umask, special bits included.
func TestOpenForWriteModeIsExactUnderARestrictiveUmask(t *testing.T) {
	dir := t.TempDir()
	w := watchDir(t, dir)
	withUmask(0o077, func() {
		writeVia(t, filepath.Join(dir, "plain"), nil)
		writeVia(t, filepath.Join(dir, "wide"), perm(0o777))
		writeVia(t, filepath.Join(dir, "setuid"), perm(0o4750))
		writeVia(t, filepath.Join(dir, "narrow"), perm(0o600))
	})
	ev := w.drain(t)
	for name, want := range map[string]uint32{"plain": 0o644, "wide": 0o777, "setuid": 0o4750, "narrow": 0o600} {
		if got := permOf(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: mode %#o, want %#o", name, got, want)
		}
	}
	if ev["plain"]&unix.IN_ATTRIB == 0 || ev["wide"]&unix.IN_ATTRIB == 0 {
		t.Errorf("no chmod where the umask cleared bits: events %#x %#x", ev["plain"], ev["wide"])
	}
	if ev["narrow"]&unix.IN_ATTRIB != 0 {
		t.Errorf("narrow: chmod although the umask kept 0600 (events %#x)", ev["narrow"])
	}
}

// Truncating keeps an existing file's mode and does not touch its
// attributes; an explicit mode is applied, with a chmod only if it differs.
func TestOpenForWriteOnAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	kept, same, changed := filepath.Join(dir, "kept"), filepath.Join(dir, "same"), filepath.Join(dir, "changed")
	for _, p := range []string{kept, same, changed} {
		if err := os.WriteFile(p, []byte("old content"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	w := watchDir(t, dir)
	writeVia(t, kept, nil)
	writeVia(t, same, perm(0o640))
	writeVia(t, changed, perm(0o604))
	ev := w.drain(t)
	for p, want := range map[string]uint32{kept: 0o640, same: 0o640, changed: 0o604} {
		name := filepath.Base(p)
		if got := permOf(t, p); got != want {
			t.Errorf("%s: mode %#o, want %#o", name, got, want)
		}
		if b, _ := os.ReadFile(p); string(b) != "x" {
			t.Errorf("%s: content %q, want truncated to \"x\"", name, b)
		}
		if ev[name]&unix.IN_MODIFY == 0 {
			t.Errorf("%s: events %#x lack IN_MODIFY (is the watch working?)", name, ev[name])
		}
	}
	if ev["kept"]&unix.IN_ATTRIB != 0 || ev["same"]&unix.IN_ATTRIB != 0 {
		t.Errorf("attributes changed although the mode held: kept %#x, same %#x", ev["kept"], ev["same"])
	}
	if ev["changed"]&unix.IN_ATTRIB == 0 {
		t.Errorf("changed: no chmod for a different explicit mode (events %#x)", ev["changed"])
	}
}
