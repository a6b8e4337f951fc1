package guestinit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/provium/provium/internal/proto"
)

func TestLoadBootInfo(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "boot.json")
	if err := os.WriteFile(p, []byte(`{"vm_name":"a","initial_time":1700000000.5,"rng_seed":"18446744073709551615","network":{"x":1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bi, err := LoadBootInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	if bi.VMName != "a" || bi.InitialTime == nil || *bi.InitialTime != 1700000000.5 || bi.RNGSeed == nil || *bi.RNGSeed != proto.Seed(^uint64(0)) || string(bi.Network) != `{"x":1}` {
		t.Fatalf("got %+v", bi)
	}
	os.WriteFile(p, []byte(`{"vm_name":"b","rng_seed":42}`), 0o644)
	bi, err = LoadBootInfo(p)
	if err != nil || *bi.RNGSeed != 42 || bi.InitialTime != nil {
		t.Fatalf("numeric seed: %+v %v", bi, err)
	}
	os.WriteFile(p, []byte(`{"rng_seed":-1}`), 0o644)
	if _, err := LoadBootInfo(p); err == nil {
		t.Fatal("negative seed accepted")
	}
	os.WriteFile(p, []byte(`{"initial_time":-3}`), 0o644)
	if _, err := LoadBootInfo(p); err == nil {
		t.Fatal("negative initial_time accepted")
	}
	bi, err = LoadBootInfo(filepath.Join(dir, "absent.json"))
	if err != nil || bi.VMName != "" {
		t.Fatalf("absent file: %+v %v", bi, err)
	}
}

func TestSplitTime(t *testing.T) {
	for _, c := range []struct {
		in        float64
		sec, nsec int64
	}{{1700000000.25, 1700000000, 250000000}, {0, 0, 0}, {12.999999999999, 13, 0}} {
		s, n := SplitTime(c.in)
		if s != c.sec || n != c.nsec {
			t.Errorf("SplitTime(%v) = %d,%d want %d,%d", c.in, s, n, c.sec, c.nsec)
		}
	}
}

func TestSeedStreamDeterministic(t *testing.T) {
	a, b, c := SeedStream(7, 100), SeedStream(7, 100), SeedStream(8, 100)
	if len(a) != 100 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("stream not deterministic per seed: %x %x %x", a[:8], b[:8], c[:8])
	}
	if !bytes.Equal(SeedStream(7, 40), a[:40]) {
		t.Fatal("shorter stream is not a prefix")
	}
}
