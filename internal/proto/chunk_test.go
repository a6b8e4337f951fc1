package proto

import (
	"bytes"
	"reflect"
	"testing"
)

// TestChunkFastPathMatchesEncoding checks that WriteChunk writes exactly
// what WriteFrame writes for every bin header size, and that ReadChunk
// decodes both fast and general chunks.
func TestChunkFastPathMatchesEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 65535, 65536, ChunkSize} {
		data := bytes.Repeat([]byte{0, 1, 0xc4}, n/3+1)[:n]
		var fast, slow bytes.Buffer
		if err := WriteChunk(&fast, data); err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(&slow, Chunk{Data: data}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast.Bytes(), slow.Bytes()) {
			t.Fatalf("n=%d: fast path %x… differs from encoder %x…", n, fast.Bytes()[:min(16, fast.Len())], slow.Bytes()[:min(16, slow.Len())])
		}
		got, err := ReadChunk(&fast)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, data) || got.EOF || got.Err != nil {
			t.Fatalf("n=%d: read back %d bytes, eof=%v err=%v", n, len(got.Data), got.EOF, got.Err)
		}
	}
	for _, c := range []Chunk{{EOF: true}, {Err: &Error{Errno: 5, Name: "EIO", Message: "Input/output error"}}, {Data: []byte("x"), EOF: true}} {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, c); err != nil {
			t.Fatal(err)
		}
		got, err := ReadChunk(&buf)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("general chunk %+v read as %+v (%v)", c, got, err)
		}
	}
}
