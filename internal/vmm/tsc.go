package vmm

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// hostTSCkHz estimates the host's TSC frequency for a microvm guest's
// tsc_early_khz=: the kernel's own measurement when exported, else the
// "cpu MHz" of /proc/cpuinfo. 0 when neither is readable (the parameter is
// then left out).
func hostTSCkHz() int {
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/tsc_freq_khz"); err == nil {
		if khz, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && khz > 0 {
			return khz
		}
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || mhz <= 0 {
			return 0
		}
		return int(mhz * 1000)
	}
	return 0
}
