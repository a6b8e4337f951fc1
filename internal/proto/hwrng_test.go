package proto

import (
	"bytes"
	"io"
	"testing"
)

func first(r io.Reader) []byte {
	b := make([]byte, 2*HWRNGBlock)
	io.ReadFull(r, b)
	return b
}

// The host and the agent must derive the same stream; the boot stream and
// other seeds must not look like it (the agent finds the stream by content).
func TestRNGStreams(t *testing.T) {
	s := first(RNGStream(42))
	if !bytes.Equal(s, first(RNGStream(42))) {
		t.Fatal("RNGStream is not deterministic")
	}
	for name, other := range map[string][]byte{"boot stream": first(RNGBootStream(42)), "seed 43": first(RNGStream(43))} {
		if bytes.Contains(other, s[:HWRNGBlock/2]) || bytes.Equal(other, s) {
			t.Fatalf("%s overlaps seed 42's stream", name)
		}
	}
}
