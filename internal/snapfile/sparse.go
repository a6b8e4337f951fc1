package snapfile

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// holeReader reads a file sequentially like a plain reader would, but
// produces the zeros of holes itself (found with SEEK_DATA/SEEK_HOLE)
// instead of asking the kernel for them: guest RAM files are mostly holes,
// and this keeps packing a large, mostly idle guest cheap (30-runtime.md A8).
// Where the filesystem cannot report holes it degrades to plain reads.
type holeReader struct {
	f       *os.File
	off     int64
	size    int64
	holeEnd int64 // [off, holeEnd) is known to be a hole
	dataEnd int64 // [off, dataEnd) is known to be data
	noSeek  bool
}

func newHoleReader(f *os.File, size int64) *holeReader {
	return &holeReader{f: f, size: size}
}

func (h *holeReader) Read(p []byte) (int, error) {
	if h.off >= h.size {
		return 0, io.EOF
	}
	if rest := h.size - h.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	if !h.noSeek && h.off >= h.holeEnd && h.off >= h.dataEnd {
		h.locate()
	}
	if h.off < h.holeEnd {
		n := int(min(int64(len(p)), h.holeEnd-h.off))
		clear(p[:n])
		h.off += int64(n)
		return n, nil
	}
	if !h.noSeek {
		p = p[:min(int64(len(p)), h.dataEnd-h.off)]
	}
	n, err := h.f.ReadAt(p, h.off)
	h.off += int64(n)
	if errors.Is(err, io.EOF) {
		if n > 0 {
			return n, nil // reported on the next call
		}
		return 0, io.ErrUnexpectedEOF // the file shrank below its stat size
	}
	return n, err
}

// locate classifies the region starting at off.
func (h *holeReader) locate() {
	fd := int(h.f.Fd())
	data, err := unix.Seek(fd, h.off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		// Only a hole remains — up to the file's current end, which is
		// short of h.size if the file shrank: then the data path's ReadAt
		// reports the EOF instead of inventing zeros.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			h.noSeek = true
			return
		}
		h.holeEnd = min(st.Size, h.size)
		if h.holeEnd <= h.off {
			h.noSeek = true
		}
		return
	case err != nil:
		h.noSeek = true
		return
	case data > h.off:
		h.holeEnd = min(data, h.size)
		return
	}
	hole, err := unix.Seek(fd, h.off, unix.SEEK_HOLE)
	if err != nil {
		h.noSeek = true
		return
	}
	h.dataEnd = min(hole, h.size)
	if h.dataEnd <= h.off {
		h.noSeek = true // inconsistent answer: trust plain reads
	}
}
