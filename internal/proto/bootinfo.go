package proto

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// BootInfoPath is where the agent reads its boot inputs; the host puts the
// file there through the initrd (40-guest-and-infra.md §1, boot inputs).
const BootInfoPath = "/etc/provium/boot.json"

// BootInfo is /etc/provium/boot.json. The host writes it; fields absent
// from the file keep their zero value and mean "not requested".
type BootInfo struct {
	VMName string `json:"vm_name"`
	// InitialTime is the wall clock to set first, in seconds since the
	// epoch (fractions allowed). Nil: leave the clock as the kernel set it.
	InitialTime *float64 `json:"initial_time,omitempty"`
	// RNGSeed seeds the kernel entropy pool deterministically.
	RNGSeed *Seed `json:"rng_seed,omitempty"`
	// Network is the interface/hosts configuration, applied by the network
	// op handlers; kept raw here so this package does not own its schema.
	Network json.RawMessage `json:"network,omitempty"`
}

// Seed is a u64 that JSON may carry as a number or, because JSON numbers
// lose precision above 2^53, as a decimal string.
type Seed uint64

// UnmarshalJSON accepts 42 and "42".
func (s *Seed) UnmarshalJSON(b []byte) error {
	str := string(b)
	if uq, err := strconv.Unquote(str); err == nil {
		str = uq
	}
	v, err := strconv.ParseUint(str, 10, 64)
	if err != nil {
		return fmt.Errorf("rng_seed: want a u64, got %s", b)
	}
	*s = Seed(v)
	return nil
}

// MarshalJSON writes a decimal string so no reader loses bits.
func (s Seed) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(strconv.FormatUint(uint64(s), 10))), nil
}
