package snapfile

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// copyBuf is the copy buffer size: large enough that a multi-GiB RAM file
// costs few syscalls, small enough to not matter per concurrent writer.
const copyBuf = 1 << 20

// Write streams a raw snapshot to w: header, m (with Members filled in from
// the files' sizes) and the members' bytes in the given order, which must
// be disks, then `ram` if m.HasRAM, then `state`. A member file that
// changes size while being copied is an error, never a silently short
// snapshot. Holes of sparse members are emitted as zeros without reading
// them; the compact form of those zeros is the compressed one.
func Write(w io.Writer, m Manifest, members ...Member) error {
	files := make([]*os.File, 0, len(members))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// Open everything before writing anything: a missing member must fail
	// before a half snapshot reaches w.
	m.Members = make([]MemberInfo, 0, len(members))
	for _, mem := range members {
		f, err := os.Open(mem.Path)
		if err != nil {
			return fmt.Errorf("snapfile: opening member %q: %w", mem.Name, err)
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("snapfile: member %q: %w", mem.Name, err)
		}
		m.Members = append(m.Members, MemberInfo{Name: mem.Name, Size: st.Size()})
	}
	if err := validateManifest(m); err != nil {
		return fmt.Errorf("snapfile: %w", err)
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("snapfile: encoding manifest: %w", err)
	}
	bw := bufio.NewWriterSize(w, copyBuf)
	hdr := make([]byte, 0, headerLen)
	hdr = append(hdr, Magic...)
	hdr = binary.BigEndian.AppendUint32(hdr, FormatVersion)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(manifest)))
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("snapfile: writing header: %w", err)
	}
	if _, err := bw.Write(manifest); err != nil {
		return fmt.Errorf("snapfile: writing manifest: %w", err)
	}
	for i, f := range files {
		info := m.Members[i]
		n, err := io.CopyN(bw, newHoleReader(f, info.Size), info.Size)
		if err != nil {
			return fmt.Errorf("snapfile: copying member %q (%d of %d bytes): %w", info.Name, n, info.Size, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapfile: flushing: %w", err)
	}
	return nil
}

// WriteZstd is Write through a zstd encoder at level 3 with content
// checksums, one stream per file (30-runtime.md A8): the form of fixture
// cache entries.
func WriteZstd(w io.Writer, m Manifest, members ...Member) error {
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true))
	if err != nil {
		return fmt.Errorf("snapfile: zstd encoder: %w", err)
	}
	if err := Write(enc, m, members...); err != nil {
		enc.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("snapfile: finishing zstd stream: %w", err)
	}
	return nil
}

// Create writes a snapshot file at path (compressed when compress is set)
// and fsyncs it, so a caller that renames it into place next cannot expose
// an empty file after a crash.
func Create(path string, compress bool, m Manifest, members ...Member) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("snapfile: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("snapfile: closing %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if compress {
		err = WriteZstd(f, m, members...)
	} else {
		err = Write(f, m, members...)
	}
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snapfile: syncing %s: %w", path, err)
	}
	return nil
}
