package initrd

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// WriteSegment writes the archive as one gzip member. The kernel's initramfs
// unpacker accepts a compressed archive at any offset (an uncompressed one
// only at a 4-byte aligned offset), so gzip members can be appended to any
// profile initrd. The gzip header carries no name and mtime 0, so equal
// archives give equal bytes. level is a compress/gzip level; NoCompression
// (stored blocks) is cheapest for the guest to unpack.
func (a *Archive) WriteSegment(w io.Writer, level int) error {
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return fmt.Errorf("gzip segment: %w", err)
	}
	if _, err := a.WriteTo(zw); err != nil {
		return fmt.Errorf("gzip segment: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip segment: %w", err)
	}
	return nil
}

// Segment returns the archive as one gzip member of stored blocks (see
// WriteSegment).
func (a *Archive) Segment() ([]byte, error) {
	var buf bytes.Buffer
	if err := a.WriteSegment(&buf, gzip.NoCompression); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
