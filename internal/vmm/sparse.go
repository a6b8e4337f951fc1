package vmm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// copySparse copies src to dst keeping holes: guest RAM files are mostly
// holes (pages the guest never touched), and copying them as zeros would
// cost both time and disk.
func copySparse(src, dst string) error {
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
	defer out.Close()
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	ifd, ofd := int(in.Fd()), int(out.Fd())
	var off int64
	for off < st.Size() {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return fmt.Errorf("seeking data in %s: %w", src, err)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seeking hole in %s: %w", src, err)
		}
		for pos := data; pos < hole; {
			rOff, wOff := pos, pos
			n, err := unix.CopyFileRange(ifd, &rOff, ofd, &wOff, int(hole-pos), 0)
			if err != nil {
				return fmt.Errorf("copying %s: %w", src, err)
			}
			if n == 0 {
				return fmt.Errorf("copying %s: unexpected end at %d", src, pos)
			}
			pos += int64(n)
		}
		off = hole
	}
	return out.Close()
}
