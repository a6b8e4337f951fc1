package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxFrameSize bounds one frame body. It leaves room for the largest single
// payload we ship in one message (16 MiB read_mem / capped exec output) plus
// envelope overhead, while stopping a corrupt length from allocating gigabytes.
const MaxFrameSize = 40 << 20

// ChunkSize is the payload size used when bulk data is streamed as Chunks.
const ChunkSize = 1 << 20

// ErrFrameTooLarge reports a frame whose length exceeds MaxFrameSize.
var ErrFrameTooLarge = errors.New("proto: frame exceeds maximum size")

// Marshal encodes v the way every frame body is encoded: struct fields as
// maps keyed by name (so fields can be added compatibly), compact integers
// and sorted map keys (so encodings are deterministic and can be pinned).
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("proto: encode %T: %w", v, err)
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes a frame body produced by Marshal into v.
func Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("proto: decode %T: %w", v, err)
	}
	return nil
}

// WriteFrame encodes v and writes it as one length-prefixed frame with a
// single Write call, so concurrent writers on distinct streams never
// interleave partial frames.
func WriteFrame(w io.Writer, v any) error {
	// Encode after 4 reserved bytes and patch the length in: one buffer,
	// no copy of the body.
	buf := bytes.NewBuffer(make([]byte, 4, 256))
	enc := msgpack.NewEncoder(buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("proto: encode %T: %w", v, err)
	}
	frame := buf.Bytes()
	if len(frame)-4 > MaxFrameSize {
		return fmt.Errorf("%w (%d bytes)", ErrFrameTooLarge, len(frame)-4)
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	return nil
}

// WriteRawFrame writes an already encoded body as one frame.
func WriteRawFrame(w io.Writer, body []byte) error {
	if len(body) > MaxFrameSize {
		return fmt.Errorf("%w (%d bytes)", ErrFrameTooLarge, len(body))
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	return nil
}

// ReadRawFrame reads one frame body. A clean end of stream before the header
// is returned as io.EOF unwrapped so callers can tell "no more frames" apart
// from a truncated one.
func ReadRawFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("proto: read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w (%d bytes)", ErrFrameTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("proto: read frame body: %w", err)
	}
	return body, nil
}

// ReadFrame reads one frame and decodes it into v.
func ReadFrame(r io.Reader, v any) error {
	body, err := ReadRawFrame(r)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}
