package initrd

import (
	"fmt"
	"io"
)

// newcMagic opens every header of the "new ASCII" cpio format, the one the
// kernel's initramfs unpacker reads (070702, with checksums, is not used).
const newcMagic = "070701"

// trailerName marks the end of one archive; the kernel then looks for the
// next (possibly compressed) archive after any zero padding.
const trailerName = "TRAILER!!!"

// headerLen is the fixed part of a newc header: the magic and 13 fields of 8
// hex digits.
const headerLen = 6 + 13*8

// header is one newc record. Fields the format has but Provium fixes (uid,
// gid, mtime, devmajor/devminor of the containing filesystem, check) are
// always zero so archives are reproducible.
type header struct {
	ino                  uint32
	mode                 uint32
	nlink                uint32
	rdevMajor, rdevMinor uint32
	name                 string
	data                 []byte
}

// pad4 returns how many zero bytes bring n up to a multiple of 4.
func pad4(n int) int { return (4 - n%4) % 4 }

var zeros [4]byte

func (h header) write(w io.Writer) error {
	nameSize := len(h.name) + 1 // the NUL terminator counts
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		newcMagic,
		h.ino, h.mode,
		0, 0, // uid, gid
		h.nlink,
		0, // mtime
		len(h.data),
		0, 0, // devmajor, devminor
		h.rdevMajor, h.rdevMinor,
		nameSize,
		0, // check
	)
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(w, h.name); err != nil {
		return err
	}
	// NUL terminator plus padding of header+name to 4 bytes.
	if _, err := w.Write(zeros[:1]); err != nil {
		return err
	}
	if _, err := w.Write(zeros[:pad4(headerLen+nameSize)]); err != nil {
		return err
	}
	if len(h.data) > 0 {
		if _, err := w.Write(h.data); err != nil {
			return err
		}
		if _, err := w.Write(zeros[:pad4(len(h.data))]); err != nil {
			return err
		}
	}
	return nil
}
