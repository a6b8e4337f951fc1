package snapfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// makeSparse creates a file of size bytes that is a hole except for the
// given data islands.
func makeSparse(t *testing.T, size int64, islands map[int64][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range islands {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestHoleReader(t *testing.T) {
	cases := map[string]map[int64][]byte{
		"all hole":    {},
		"islands":     {1 << 20: bytes.Repeat([]byte{1}, 5000), 5<<20 + 3: []byte("x"), 8<<20 - 2: []byte("yz")},
		"data at 0":   {0: bytes.Repeat([]byte{2}, 70000)},
		"data at end": {8<<20 - 4096: bytes.Repeat([]byte{3}, 4096)},
	}
	for name, islands := range cases {
		t.Run(name, func(t *testing.T) {
			p := makeSparse(t, 8<<20, islands)
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// An odd buffer size so reads straddle region boundaries.
			var got bytes.Buffer
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{newHoleReader(f, int64(len(want)))}, make([]byte, 10007)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("content differs (len %d, want %d)", got.Len(), len(want))
			}
		})
	}
}

func TestWriteShrunkMember(t *testing.T) {
	// A member shorter than its stat size at copy time must fail, not
	// produce a short snapshot. Simulate with a reader over a shrunk file.
	p := makeSparse(t, 100, map[int64][]byte{0: []byte("abc")})
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(p, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, newHoleReader(f, 100), 100); err == nil {
		t.Fatal("copy of a shrunk file succeeded")
	}
}
