package sched

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Host is what the pool's defaults are computed from (30-runtime.md B1).
type Host struct {
	MemTotal     uint64 // MemTotal of /proc/meminfo, bytes
	CgroupMemory uint64 // lowest memory limit of our cgroup and its ancestors; 0 = none
	AffinityCPUs int    // online CPUs in our affinity mask
	CgroupCPUs   int    // floor(quota / period) of cpu.max (or cfs quota), ≥ 1; 0 = none
}

// ReadHost reads the host's memory and CPU limits below root ("/" on a
// real host; a fixture tree in tests): /proc/meminfo, /proc/self/cgroup and
// the cgroup v2 (memory.max, cpu.max) or v1 (memory.limit_in_bytes,
// cpu.cfs_quota_us / cpu.cfs_period_us) files of our cgroup and its
// ancestors under /sys/fs/cgroup. A missing or unreadable cgroup file means
// no limit; a missing meminfo is an error. affinity is the caller's count
// of usable CPUs (runtime.NumCPU honours the affinity mask).
func ReadHost(root string, affinity int) (Host, error) {
	h := Host{AffinityCPUs: affinity}
	mi, err := os.ReadFile(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return h, fmt.Errorf("pool: reading host memory: %w", err)
	}
	if h.MemTotal, err = ParseMemTotal(mi); err != nil {
		return h, fmt.Errorf("pool: %w", err)
	}
	groups, _ := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	h.CgroupMemory, h.CgroupCPUs = cgroupLimits(root, ParseCgroupFile(groups))
	return h, nil
}

// ParseMemTotal returns MemTotal in bytes from /proc/meminfo contents.
func ParseMemTotal(meminfo []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			break
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("no MemTotal line in /proc/meminfo")
}

// Cgroups is our place in the cgroup hierarchies, from /proc/self/cgroup.
type Cgroups struct {
	Unified string            // v2 path ("0::<path>"); "" when absent
	V1      map[string]string // v1 controller → path
}

// ParseCgroupFile parses /proc/self/cgroup.
func ParseCgroupFile(b []byte) Cgroups {
	c := Cgroups{V1: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			c.Unified = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			c.V1[ctl] = parts[2]
		}
	}
	return c
}

// cgroupLimits finds the memory and CPU limits of our cgroups (lowest over
// the cgroup and its ancestors, v2 and v1 alike).
func cgroupLimits(root string, c Cgroups) (mem uint64, cpus int) {
	base := filepath.Join(root, "sys/fs/cgroup")
	keep := func(m uint64, n int) {
		if m > 0 && (mem == 0 || m < mem) {
			mem = m
		}
		if n > 0 && (cpus == 0 || n < cpus) {
			cpus = n
		}
	}
	if c.Unified != "" {
		for _, mount := range []string{base, filepath.Join(base, "unified")} {
			if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
				continue
			}
			for _, dir := range ancestors(mount, c.Unified) {
				keep(readV2Memory(dir), readV2CPU(dir))
			}
		}
	}
	if p, ok := c.V1["memory"]; ok {
		for _, dir := range ancestors(filepath.Join(base, "memory"), p) {
			keep(readV1Memory(dir), 0)
		}
	}
	if p, ok := c.V1["cpu"]; ok {
		for _, mount := range []string{"cpu", "cpu,cpuacct", "cpuacct,cpu"} {
			for _, dir := range ancestors(filepath.Join(base, mount), p) {
				keep(0, readV1CPU(dir))
			}
		}
	}
	return mem, cpus
}

// ancestors lists mount/<p>, its parents up to the mount itself. In a
// cgroup namespace the path may not exist below the mount; the mount (our
// namespace's root) is still read.
func ancestors(mount, p string) []string {
	var out []string
	for p = path.Clean("/" + p); ; p = path.Dir(p) {
		out = append(out, filepath.Join(mount, p))
		if p == "/" {
			return out
		}
	}
}

func readTrim(p string) (string, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func readV2Memory(dir string) uint64 {
	s, ok := readTrim(filepath.Join(dir, "memory.max"))
	if !ok {
		return 0
	}
	return ParseMemoryMax(s)
}

// ParseMemoryMax parses cgroup v2 memory.max: "max" or bytes (0 = none).
func ParseMemoryMax(s string) uint64 {
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// v1Unlimited is above any real limit: v1 writes "unlimited" as a page
// multiple just below 2^63.
const v1Unlimited = 1 << 62

func readV1Memory(dir string) uint64 {
	s, ok := readTrim(filepath.Join(dir, "memory.limit_in_bytes"))
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n >= v1Unlimited {
		return 0
	}
	return n
}

func readV2CPU(dir string) int {
	s, ok := readTrim(filepath.Join(dir, "cpu.max"))
	if !ok {
		return 0
	}
	return ParseCPUMax(s)
}

// ParseCPUMax parses cgroup v2 cpu.max ("max 100000" or "<quota> <period>")
// into whole CPUs: floor(quota/period), at least 1; 0 = no limit.
func ParseCPUMax(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] == "max" {
		return 0
	}
	period := "100000"
	if len(f) > 1 {
		period = f[1]
	}
	return quotaCPUs(f[0], period)
}

func readV1CPU(dir string) int {
	q, ok1 := readTrim(filepath.Join(dir, "cpu.cfs_quota_us"))
	p, ok2 := readTrim(filepath.Join(dir, "cpu.cfs_period_us"))
	if !ok1 || !ok2 {
		return 0
	}
	return quotaCPUs(q, p)
}

// quotaCPUs turns a CFS quota and period into whole CPUs (≥ 1); a negative
// or unparsable quota means no limit (0).
func quotaCPUs(quota, period string) int {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return max(1, int(q/p))
}

// Overcommit bounds (20-cli-config.md §3.5).
const (
	MinOvercommit = 0.5
	MaxOvercommit = 8.0
)

// msgOvercommitClamped is the notice for an out-of-range --cpu-overcommit
// (after `provium: `).
const msgOvercommitClamped = "--cpu-overcommit %s clamped to %s (sane range 0.5–8.0)"

// ClampOvercommit keeps f within [0.5, 8.0]; notice is the line to print
// (without `provium: `) when it had to, naming raw as the user wrote it.
func ClampOvercommit(f float64, raw string) (v float64, notice string) {
	switch {
	case math.IsNaN(f) || f < MinOvercommit:
		v = MinOvercommit
	case f > MaxOvercommit:
		v = MaxOvercommit
	default:
		return f, ""
	}
	return v, fmt.Sprintf(msgOvercommitClamped, raw, formatFactor(v))
}

// formatFactor prints a factor with at least one decimal (`8.0`, `0.5`).
func formatFactor(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// Sizing is what the user asked of the pool; zero fields take defaults.
type Sizing struct {
	Memory     uint64  // --mem; 0 = 80 % of MemTotal, capped by the cgroup
	CPUs       int     // --cpus; 0 = usable CPUs, capped by the cgroup
	Overcommit float64 // --cpu-overcommit, already clamped; 0 = 1.0
}

// DefaultMemoryPercent is the share of MemTotal the pool takes by default.
const DefaultMemoryPercent = 80

// percentOf is floor(n × pct / 100) without overflow.
func percentOf(n, pct uint64) uint64 {
	return n/100*pct + n%100*pct/100
}

// Total is the pool's size for host h (30-runtime.md B1).
func Total(h Host, s Sizing) Amount {
	mem := s.Memory
	if mem == 0 {
		mem = percentOf(h.MemTotal, DefaultMemoryPercent)
		if h.CgroupMemory > 0 && h.CgroupMemory < mem {
			mem = h.CgroupMemory
		}
	}
	base := s.CPUs
	if base == 0 {
		base = max(1, h.AffinityCPUs)
		if h.CgroupCPUs > 0 && h.CgroupCPUs < base {
			base = h.CgroupCPUs
		}
	}
	oc := s.Overcommit
	if oc == 0 {
		oc = 1
	}
	return Amount{Memory: mem, CPUs: max(1, int(math.Floor(float64(base)*oc)))}
}
