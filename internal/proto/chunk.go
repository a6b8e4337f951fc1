package proto

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Bulk data is the one place where copies cost real throughput: a guest
// under TCG spends most of a transfer's time in memmove. WriteChunk and
// ReadChunk move Chunk{Data} frames without copying the payload, producing
// and accepting exactly the bytes WriteFrame/ReadFrame would (pinned by a
// test), so either side may use either path.

// chunkPrefix is the msgpack of Chunk{Data: d} up to the payload: a one-key
// map, the key "data", and a bin header.
func chunkPrefix(n int) []byte {
	p := make([]byte, 4, 4+1+5+5)
	p = append(p, 0x81, 0xa4, 'd', 'a', 't', 'a')
	switch {
	case n < 1<<8:
		p = append(p, 0xc4, byte(n))
	case n < 1<<16:
		p = append(p, 0xc5, byte(n>>8), byte(n))
	default:
		p = append(p, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	binary.BigEndian.PutUint32(p, uint32(len(p)-4+n))
	return p
}

// WriteChunk writes the frame of Chunk{Data: data} in two writes (prefix,
// payload) so data is never copied. The caller must be the stream's only
// writer, which every op handler is.
func WriteChunk(w io.Writer, data []byte) error {
	if len(data) == 0 {
		return WriteFrame(w, Chunk{})
	}
	p := chunkPrefix(len(data))
	if len(p)-4+len(data) > MaxFrameSize {
		return fmt.Errorf("%w (%d bytes)", ErrFrameTooLarge, len(p)-4+len(data))
	}
	if _, err := w.Write(p); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("proto: write frame: %w", err)
	}
	return nil
}

// ReadChunk reads one Chunk frame. A data-only chunk's Data aliases the
// frame buffer (no decode copy); any other chunk is decoded normally.
func ReadChunk(r io.Reader) (Chunk, error) {
	body, err := ReadRawFrame(r)
	if err != nil {
		return Chunk{}, err
	}
	if n, hdr, ok := dataOnlyChunk(body); ok {
		return Chunk{Data: body[hdr : hdr+n]}, nil
	}
	var c Chunk
	if err := Unmarshal(body, &c); err != nil {
		return Chunk{}, err
	}
	return c, nil
}

// dataOnlyChunk recognises the exact WriteChunk layout and returns the
// payload length and offset.
func dataOnlyChunk(b []byte) (n, off int, ok bool) {
	if len(b) < 8 || b[0] != 0x81 || b[1] != 0xa4 || string(b[2:6]) != "data" {
		return 0, 0, false
	}
	switch b[6] {
	case 0xc4:
		n, off = int(b[7]), 8
	case 0xc5:
		if len(b) < 9 {
			return 0, 0, false
		}
		n, off = int(binary.BigEndian.Uint16(b[7:])), 9
	case 0xc6:
		if len(b) < 11 {
			return 0, 0, false
		}
		n, off = int(binary.BigEndian.Uint32(b[7:])), 11
	default:
		return 0, 0, false
	}
	if off+n != len(b) {
		return 0, 0, false
	}
	return n, off, true
}
