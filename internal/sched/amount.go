// Package sched is Provium's scheduler (30-runtime.md B): the run's pool of
// memory and vCPUs, the charges files and VMs hold on it, per-file claims,
// FIFO dispatch with pressure throttling, deadlock detection and the
// numbers the event stream samples. It knows nothing of Lua, labs or QEMU:
// callers describe what they need as Amounts.
package sched

import (
	"fmt"
	"strconv"
	"strings"
)

// Charges of 30-runtime.md B2.
const (
	// FileOverhead is what every dispatched file holds until it completes.
	FileOverhead uint64 = 50 << 20
	// VMOverhead is added to each running VM's memory (QEMU itself).
	VMOverhead uint64 = 100 << 20
)

// Amount is a quantity of pool resources (the events' ResourceAmount).
type Amount struct {
	Memory uint64 // bytes
	CPUs   int
}

// VMCharge is what a running VM of that size holds: its memory plus
// VMOverhead, and its vCPUs.
func VMCharge(memory uint64, cpus int) Amount {
	return Amount{Memory: memory + VMOverhead, CPUs: cpus}
}

// Add returns a + b.
func (a Amount) Add(b Amount) Amount {
	return Amount{Memory: a.Memory + b.Memory, CPUs: a.CPUs + b.CPUs}
}

// Sub returns a - b, each component floored at zero.
func (a Amount) Sub(b Amount) Amount {
	var r Amount
	if a.Memory > b.Memory {
		r.Memory = a.Memory - b.Memory
	}
	if a.CPUs > b.CPUs {
		r.CPUs = a.CPUs - b.CPUs
	}
	return r
}

// Fits reports whether a fits within b in every component.
func (a Amount) Fits(b Amount) bool {
	return a.Memory <= b.Memory && a.CPUs <= b.CPUs
}

// IsZero reports whether a holds nothing.
func (a Amount) IsZero() bool { return a.Memory == 0 && a.CPUs == 0 }

// String renders an amount for messages: `1.1 GiB and 2 cpus`.
func (a Amount) String() string {
	unit := "cpus"
	if a.CPUs == 1 {
		unit = "cpu"
	}
	return FormatMemory(a.Memory) + " and " + strconv.Itoa(a.CPUs) + " " + unit
}

// FormatMemory renders bytes with up to two decimals in the largest binary
// unit that keeps the number at or above 1 (`612 MiB`, `1.1 GiB`,
// `1.04 GiB`): trailing zeros are dropped, and two decimals keep a request
// just over the pool from reading like the pool itself.
func FormatMemory(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strings.TrimRight(strings.TrimRight(strconv.FormatFloat(v, 'f', 2, 64), "0"), ".")
	return fmt.Sprintf("%s %s", s, units[i])
}
