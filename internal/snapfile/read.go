package snapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// blockSize is the granularity of sparse extraction: an aligned all-zero
// block of this size becomes a hole (30-runtime.md A8).
const blockSize = 4096

// Reader reads a snapshot sequentially, raw or zstd-compressed alike.
// Members are visited in file order with Next; the current member is read
// with Read, ExtractSparse or copied to a writer.
type Reader struct {
	file       *os.File // nil for NewReader
	dec        *zstd.Decoder
	src        *bufio.Reader
	manifest   Manifest
	next       int   // index of the member Next returns
	left       int64 // unread bytes of the current member
	cur        int   // index of the current member, -1 before the first Next
	finished   bool
	compressed bool
}

// Open opens the snapshot at path and reads its header and manifest.
// Errors caused by the file's content wrap ErrCorrupt.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapfile: %w", err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.file = f
	return r, nil
}

// NewReader reads a snapshot from a stream, sniffing the zstd magic so that
// raw (scratch) snapshots and compressed cache entries both work.
func NewReader(in io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(in, copyBuf)
	r := &Reader{src: br, cur: -1}
	head, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("snapfile: reading header: %w", err)
	}
	if bytes.Equal(head, zstdMagic) {
		// One decoder goroutine at most: restores run many at once on a
		// small host, and decoding is rarely the bottleneck next to QEMU.
		dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("snapfile: zstd decoder: %w", err)
		}
		r.dec = dec
		r.compressed = true
		r.src = bufio.NewReaderSize(dec, copyBuf)
	}
	if err := r.readHeader(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) readHeader() error {
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(r.src, hdr); err != nil {
		return sourceErr("header", err)
	}
	if string(hdr[:len(Magic)]) != Magic {
		return corruptf("not a snapshot file (bad magic)")
	}
	if v := binary.BigEndian.Uint32(hdr[len(Magic):]); v != FormatVersion {
		return corruptf("unsupported snapshot format version %d (want %d)", v, FormatVersion)
	}
	n := binary.BigEndian.Uint32(hdr[len(Magic)+4:])
	if n > maxManifest {
		return corruptf("manifest length %d exceeds %d", n, maxManifest)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r.src, raw); err != nil {
		return sourceErr("manifest", err)
	}
	if err := json.Unmarshal(raw, &r.manifest); err != nil {
		return corruptf("bad manifest: %v", err)
	}
	if err := validateManifest(r.manifest); err != nil {
		return corruptf("bad manifest: %v", err)
	}
	return nil
}

// sourceErr classifies an error reading the snapshot itself: running out
// of bytes means truncation, and anything the decoder reports (checksum,
// malformed frame) is corruption too.
func sourceErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf("truncated in %s", what)
	}
	return corruptf("reading %s: %v", what, err)
}

// Manifest returns the snapshot's manifest.
func (r *Reader) Manifest() Manifest { return r.manifest }

// Compressed reports whether the file is zstd-compressed.
func (r *Reader) Compressed() bool { return r.compressed }

// Next skips whatever is left of the current member and makes the next one
// current. After the last member it checks that the stream ends there (which
// also makes the zstd decoder verify its checksum) and returns io.EOF.
func (r *Reader) Next() (MemberInfo, error) {
	if err := r.skipRest(); err != nil {
		return MemberInfo{}, err
	}
	if r.next >= len(r.manifest.Members) {
		if err := r.finish(); err != nil {
			return MemberInfo{}, err
		}
		return MemberInfo{}, io.EOF
	}
	r.cur = r.next
	r.next++
	info := r.manifest.Members[r.cur]
	r.left = info.Size
	return info, nil
}

func (r *Reader) skipRest() error {
	if r.left == 0 {
		return nil
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	return nil
}

// finish checks for the end of the stream after the last member.
func (r *Reader) finish() error {
	if r.finished {
		return nil
	}
	var b [1]byte
	n, err := r.src.Read(b[:])
	for n == 0 && err == nil {
		n, err = r.src.Read(b[:])
	}
	if n > 0 {
		return corruptf("trailing data after the last member")
	}
	if !errors.Is(err, io.EOF) {
		return corruptf("reading end of stream: %v", err)
	}
	r.finished = true
	return nil
}

// Read reads from the current member; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur < 0 || r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.src.Read(p)
	r.left -= int64(n)
	if err != nil {
		if r.left > 0 || !errors.Is(err, io.EOF) {
			return n, sourceErr(fmt.Sprintf("member %q", r.manifest.Members[r.cur].Name), err)
		}
		err = nil
	}
	return n, err
}

// SkipTo moves to the named member, skipping the ones before it. Members can
// only be visited forwards.
func (r *Reader) SkipTo(name string) (MemberInfo, error) {
	if r.cur >= 0 && r.manifest.Members[r.cur].Name == name && r.left == r.manifest.Members[r.cur].Size {
		return r.manifest.Members[r.cur], nil
	}
	for {
		info, err := r.Next()
		if errors.Is(err, io.EOF) {
			return MemberInfo{}, fmt.Errorf("snapfile: member %q not found ahead of the current position", name)
		}
		if err != nil {
			return MemberInfo{}, err
		}
		if info.Name == name {
			return info, nil
		}
	}
}

// ExtractSparse writes the rest of the current member to path, leaving a
// hole for every aligned all-zero 4 KiB block and setting the final size
// with ftruncate, so a mostly untouched RAM image stays small on disk.
func (r *Reader) ExtractSparse(path string) (err error) {
	if r.cur < 0 {
		return errors.New("snapfile: ExtractSparse before Next")
	}
	name := r.manifest.Members[r.cur].Name
	size := r.left
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("snapfile: extracting %q: %w", name, err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("snapfile: extracting %q: %w", name, cerr)
		}
	}()
	buf := make([]byte, copyBuf)
	zero := make([]byte, blockSize)
	var off int64
	for r.left > 0 {
		n, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), r.left)])
		if rerr != nil {
			return rerr
		}
		if err := writeNonZero(out, buf[:n], off, zero); err != nil {
			return fmt.Errorf("snapfile: extracting %q: %w", name, err)
		}
		off += int64(n)
	}
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("snapfile: extracting %q: %w", name, err)
	}
	return nil
}

// writeNonZero writes chunk at off, skipping whole zero blocks and
// coalescing runs of data blocks into single writes. off is block-aligned
// because chunks are multiples of blockSize except the last one.
func writeNonZero(out *os.File, chunk []byte, off int64, zero []byte) error {
	start := -1 // start of the pending run of data blocks
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := out.WriteAt(chunk[start:end], off+int64(start))
		start = -1
		return err
	}
	for i := 0; i < len(chunk); i += blockSize {
		end := min(i+blockSize, len(chunk))
		if bytes.Equal(chunk[i:end], zero[:end-i]) {
			if err := flush(i); err != nil {
				return err
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return flush(len(chunk))
}

// Extract seeks to the named member and extracts it sparsely to path.
func (r *Reader) Extract(name, path string) error {
	if _, err := r.SkipTo(name); err != nil {
		return err
	}
	return r.ExtractSparse(path)
}

// StreamState seeks to the `state` member and copies it to w (QEMU's
// incoming descriptor), then checks the stream ends there. Errors from the
// snapshot wrap ErrCorrupt; errors writing w do not.
func (r *Reader) StreamState(w io.Writer) (int64, error) {
	if _, err := r.SkipTo(MemberState); err != nil {
		return 0, err
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return n, fmt.Errorf("snapfile: streaming state: %w", err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = corruptf("member after %q", MemberState)
		}
		return n, err
	}
	return n, nil
}

// Close releases the decoder and the file.
func (r *Reader) Close() error {
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	if r.file != nil {
		err := r.file.Close()
		r.file = nil
		return err
	}
	return nil
}

// ReadManifest returns the manifest of the snapshot at path without reading
// the members.
func ReadManifest(path string) (Manifest, error) {
	r, err := Open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer r.Close()
	return r.Manifest(), nil
}

// Verify reads the whole snapshot at path, checking the manifest, every
// member's length, the end of stream and (compressed) the zstd checksum.
func Verify(path string) (Manifest, error) {
	r, err := Open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer r.Close()
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Manifest(), nil
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%s: %w", path, err)
		}
	}
}
