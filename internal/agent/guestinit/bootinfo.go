package guestinit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/provium/provium/internal/proto"
)

// BootInfoPath is where the host's per-boot inputs arrive (initrd overlay).
const BootInfoPath = proto.BootInfoPath

// LoadBootInfo reads path; a missing file is an empty BootInfo (booted
// without Provium's overlay, e.g. a hand-made initrd).
func LoadBootInfo(path string) (proto.BootInfo, error) {
	var bi proto.BootInfo
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return bi, nil
	}
	if err != nil {
		return bi, fmt.Errorf("guestinit: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &bi); err != nil {
		return bi, fmt.Errorf("guestinit: parse %s: %w", path, err)
	}
	if bi.InitialTime != nil && (math.IsNaN(*bi.InitialTime) || math.IsInf(*bi.InitialTime, 0) || *bi.InitialTime < 0) {
		return bi, fmt.Errorf("guestinit: %s: initial_time must be a finite non-negative number", path)
	}
	return bi, nil
}

// SplitTime turns seconds since the epoch into whole seconds and
// nanoseconds, rounding to the nearest nanosecond representable.
func SplitTime(secs float64) (sec, nsec int64) {
	sec = int64(math.Floor(secs))
	nsec = int64(math.Round((secs - float64(sec)) * 1e9))
	if nsec >= 1e9 {
		sec, nsec = sec+1, nsec-1e9
	}
	return sec, nsec
}

// SeedStream derives n deterministic bytes from seed (SHA-256 in counter
// mode), the material fed to the kernel pool.
func SeedStream(seed proto.Seed, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var block [16]byte
	binary.LittleEndian.PutUint64(block[:8], uint64(seed))
	for ctr := uint64(0); len(out) < n; ctr++ {
		binary.LittleEndian.PutUint64(block[8:], ctr)
		sum := sha256.Sum256(block[:])
		out = append(out, sum[:]...)
	}
	return out[:n]
}
