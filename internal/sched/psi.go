package sched

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultPSIThreshold is `[provium] psi_threshold` when unset (percent).
const DefaultPSIThreshold = 50.0

// ParseSomeAvg10 returns the `some avg10` value of a /proc/pressure file.
func ParseSomeAvg10(b []byte) (float64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "avg10="); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, fmt.Errorf("pressure: bad avg10 %q", v)
				}
				return x, nil
			}
		}
	}
	return 0, errors.New("pressure: no `some avg10` field")
}

// Pressure reads /proc/pressure/{cpu,memory} below a root directory.
type Pressure struct {
	Root string // "/" on a real host
}

// Read returns the larger `some avg10` of cpu and memory. available is
// false when neither file exists (a kernel without PSI): that counts as
// no pressure. An unreadable or malformed file also counts as none.
func (p Pressure) Read() (avg10 float64, available bool) {
	for _, name := range []string{"cpu", "memory"} {
		b, err := os.ReadFile(filepath.Join(p.Root, "proc/pressure", name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				available = true
			}
			continue
		}
		available = true
		if v, err := ParseSomeAvg10(b); err == nil && v > avg10 {
			avg10 = v
		}
	}
	return avg10, available
}

// MsgNoPSI is the -v notice (after `provium: `) of a host without PSI.
const MsgNoPSI = "no /proc/pressure on this host: dispatch is not throttled by pressure"
