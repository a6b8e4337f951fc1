package initrd

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// kind is the type of one archive entry.
type kind uint8

const (
	kindFile kind = iota
	kindDir
	kindSymlink
	kindCharDev
)

// File-type bits of a cpio mode (the same values as the Linux S_IF* constants).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// maxPerm is the largest permission value (rwx for all plus setuid, setgid and sticky).
const maxPerm = 0o7777

// maxEntrySize is the largest file newc can describe (an 8-hex-digit size).
const maxEntrySize = 0xffffffff

// implicitDirPerm is the mode of parent directories nobody added explicitly.
const implicitDirPerm = 0o755

type entry struct {
	kind         kind
	perm         uint32
	data         []byte // file content or symlink target
	major, minor uint32 // device numbers of a character device
}

// Archive is an in-memory set of initramfs entries keyed by path. Adding a
// path twice replaces the earlier entry (the later one wins, as in a boot
// option list). The zero value is not usable; call NewArchive. An Archive
// is not safe for concurrent use.
type Archive struct {
	entries map[string]entry
	// implicit holds every ancestor directory of an added path, so a
	// conflicting "file where a directory must be" is caught when added.
	implicit map[string]bool
}

// NewArchive returns an empty archive.
func NewArchive() *Archive {
	return &Archive{entries: map[string]entry{}, implicit: map[string]bool{}}
}

// Len reports how many entries were added explicitly.
func (a *Archive) Len() int { return len(a.entries) }

// AddFile adds a regular file with the given permission bits (0..0o7777).
func (a *Archive) AddFile(p string, content []byte, perm uint32) error {
	return a.add(p, entry{kind: kindFile, perm: perm, data: content})
}

// AddDir adds a directory with the given permission bits.
func (a *Archive) AddDir(p string, perm uint32) error {
	return a.add(p, entry{kind: kindDir, perm: perm})
}

// AddSymlink adds a symbolic link pointing at target.
func (a *Archive) AddSymlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("%q: empty symlink target", p)
	}
	return a.add(p, entry{kind: kindSymlink, perm: 0o777, data: []byte(target)})
}

// AddCharDev adds a character device node (e.g. /dev/console, 5:1), which the
// kernel needs before any devtmpfs is mounted to give init its console.
func (a *Archive) AddCharDev(p string, perm, major, minor uint32) error {
	return a.add(p, entry{kind: kindCharDev, perm: perm, major: major, minor: minor})
}

// cleanPath validates an absolute, already-clean path and returns it without
// the leading slash, which is how the kernel and cpio(1) name entries.
func cleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q: path must be absolute", p)
	}
	if p == "/" {
		return "", fmt.Errorf("%q: path names the root directory", p)
	}
	if path.Clean(p) != p {
		return "", fmt.Errorf("%q: path is not clean (want %q)", p, path.Clean(p))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%q: path contains a NUL byte", p)
	}
	return p[1:], nil
}

func (a *Archive) add(p string, e entry) error {
	name, err := cleanPath(p)
	if err != nil {
		return err
	}
	if e.perm > maxPerm {
		return fmt.Errorf("%q: mode %O out of range 0..0o7777", p, e.perm)
	}
	if uint64(len(e.data)) > maxEntrySize {
		return fmt.Errorf("%q: %d bytes exceed the cpio newc limit of 4 GiB", p, len(e.data))
	}
	if e.kind != kindDir && a.implicit[name] {
		return fmt.Errorf("%q: is a parent directory of another entry", p)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if parent, ok := a.entries[dir]; ok && parent.kind != kindDir {
			return fmt.Errorf("%q: parent %q is not a directory", p, "/"+dir)
		}
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		a.implicit[dir] = true
	}
	a.entries[name] = e
	return nil
}

// names returns every path the archive writes (explicit entries plus implied
// parents), sorted bytewise. A parent is a prefix of its children, so it
// always sorts first and the kernel creates it before their contents.
func (a *Archive) names() []string {
	names := make([]string, 0, len(a.entries)+len(a.implicit))
	for n := range a.entries {
		names = append(names, n)
	}
	for n := range a.implicit {
		if _, ok := a.entries[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// WriteTo writes the archive as an uncompressed cpio newc stream ending in
// the TRAILER!!! record.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	for i, name := range a.names() {
		e, ok := a.entries[name]
		if !ok {
			e = entry{kind: kindDir, perm: implicitDirPerm}
		}
		h := header{ino: uint32(i + 1), name: name, nlink: 1}
		switch e.kind {
		case kindFile:
			h.mode = modeFile | e.perm
			h.data = e.data
		case kindDir:
			h.mode = modeDir | e.perm
			h.nlink = 2
		case kindSymlink:
			h.mode = modeSymlink | e.perm
			h.data = e.data
		case kindCharDev:
			h.mode = modeCharDev | e.perm
			h.rdevMajor, h.rdevMinor = e.major, e.minor
		}
		if err := h.write(cw); err != nil {
			return cw.n, fmt.Errorf("write cpio entry %q: %w", "/"+name, err)
		}
	}
	trailer := header{name: trailerName, nlink: 1}
	if err := trailer.write(cw); err != nil {
		return cw.n, fmt.Errorf("write cpio trailer: %w", err)
	}
	return cw.n, nil
}

// Bytes returns the uncompressed cpio newc stream.
func (a *Archive) Bytes() []byte {
	var buf bytes.Buffer
	// Writing to a bytes.Buffer cannot fail.
	_, _ = a.WriteTo(&buf)
	return buf.Bytes()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
