package guest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestSparseWriterKeepsBytesAndPunchesZeroBlocks(t *testing.T) {
	data := make([]byte, 10*sparseBlock+123)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, blk := range []int{0, 3, 9} { // data blocks; the rest is zero
		for i := blk * sparseBlock; i < (blk+1)*sparseBlock && i < len(data); i++ {
			data[i] = byte(rng.IntN(255) + 1)
		}
	}
	data[len(data)-1] = 7 // a non-zero tail
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := &sparseWriter{f: f}
	// Odd write sizes cross block boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(3*sparseBlock))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.emit(w.pending); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(w.off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if alloc := st.Blocks * 512; alloc > 5*sparseBlock {
		t.Errorf("allocated %d bytes for 4 data blocks: zero blocks were written", alloc)
	}
}
