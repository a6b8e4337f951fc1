// Package sparse copies files that are mostly holes — guest RAM files and
// disk images — keeping the holes: a reflink (FICLONE) where the filesystem
// supports it, else only the data extents (SEEK_DATA/SEEK_HOLE with
// copy_file_range, which itself shares extents on filesystems that can).
package sparse

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Copy copies src to a new (or truncated) file dst, mode 0600.
func Copy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := CopyFile(out, in, st.Size()); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// CopyFile copies the first size bytes of in into the empty file out.
func CopyFile(out, in *os.File, size int64) error {
	if size > 0 && unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		if st, err := in.Stat(); err == nil && st.Size() == size {
			return nil
		}
	}
	if err := out.Truncate(size); err != nil {
		return err
	}
	ifd, ofd := int(in.Fd()), int(out.Fd())
	var off int64
	for off < size {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return fmt.Errorf("seeking data: %w", err)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seeking hole: %w", err)
		}
		hole = min(hole, size)
		for pos := data; pos < hole; {
			rOff, wOff := pos, pos
			n, err := unix.CopyFileRange(ifd, &rOff, ofd, &wOff, int(hole-pos), 0)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("unexpected end at %d", pos)
			}
			pos += int64(n)
		}
		off = hole
	}
	return nil
}

// Create makes a blank sparse file of size bytes (a scratch disk).
func Create(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
