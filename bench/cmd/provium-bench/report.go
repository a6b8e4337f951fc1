package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/provium/provium/internal/image"
	"github.com/provium/provium/internal/vmm"
)

// report is everything one run measured, as written to JSON.
type report struct {
	Date    string    `json:"date"`
	Machine machine   `json:"machine"`
	B1      *b1Result `json:"b1,omitempty"`
	B3      *b3Result `json:"b3,omitempty"`
	B5      *b5Result `json:"b5,omitempty"`
}

// machine describes where the numbers come from.
type machine struct {
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"`
	Accel       string `json:"accel"`
	QEMUVersion string `json:"qemu_version"`
	HostKernel  string `json:"host_kernel"`
	GuestKernel string `json:"guest_kernel"`
	GoVersion   string `json:"go_version"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages at the start
	// and at the end of the run: the machines are shared.
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
}

func machineInfo(ctx context.Context, accel string, img *image.Result) machine {
	m := machine{Cores: runtime.NumCPU(), Accel: accel, GoVersion: runtime.Version(), GuestKernel: img.KernelRelease}
	m.CPUModel = cpuModel()
	m.LoadAvgStart = loadAvg()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.HostKernel = strings.TrimSpace(string(b))
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(vctx, vmm.DefaultQEMU, "--version").Output(); err == nil {
		m.QEMUVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	} else {
		m.QEMUVersion = "unknown: " + err.Error()
	}
	return m
}

// loadAvg is the first three fields of /proc/loadavg ("" when unreadable).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (r *report) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

func (r *report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## Provium benchmarks, %s\n\n", r.Date)
	fmt.Fprintf(&b, "Machine: %s, %d cores, accel %s, %s, host kernel %s, guest kernel %s, %s; load average %s at the start, %s at the end.\n\n",
		m.CPUModel, m.Cores, m.Accel, m.QEMUVersion, m.HostKernel, m.GuestKernel, m.GoVersion, m.LoadAvgStart, m.LoadAvgEnd)
	if b1 := r.B1; b1 != nil {
		fmt.Fprintf(&b, "### B1 boot → ready (%d alternating pairs, %s, %d MiB, %d vCPU)\n\n", b1.Boots, b1.Machine, b1.MemoryMiB, b1.CPUs)
		b.WriteString("| what | median | min | target |\n|---|---|---|---|\n")
		fmt.Fprintf(&b, "| Provium: boot → agent Hello | %.3f s | %.3f s | ≤ 2.1 s |\n", b1.ProviumMed, b1.ProviumMin)
		fmt.Fprintf(&b, "| raw QEMU: start → /init marker | %.3f s | %.3f s | |\n", b1.RawMed, b1.RawMin)
		if len(b1.RawAgentS) > 0 {
			fmt.Fprintf(&b, "| raw QEMU, agent bytes in the initrd (not run) | %.3f s | %.3f s | |\n", b1.RawAgentMed, minOf(b1.RawAgentS))
		}
		fmt.Fprintf(&b, "| ratio of medians (median of pair ratios) | %.3f (%.3f) | | ≤ 1.05 |\n\n", b1.Ratio, b1.PairRatioMd)
	}
	if b3 := r.B3; b3 != nil && len(b3.Ops) > 0 {
		fmt.Fprintf(&b, "### B3 agent operation latency, Provium half (%d iterations each, one at a time)\n\n", b3.Ops[0].N)
		writeOpsMarkdown(&b, b3.Ops)
		if b3.StreamMiBps > 0 {
			fmt.Fprintf(&b, "Process stdout stream throughput (64 MiB through proc:stdout_stream): %.1f MiB/s\n\n", b3.StreamMiBps)
		}
		if b3.QGA != nil {
			writeQGAMarkdown(&b, b3.QGA)
		}
	}
	if b3 := r.B3; b3 != nil && len(b3.Lua) > 0 {
		fmt.Fprintf(&b, "### B3 through the Lua binding (%d iterations each, timed around the Lua call)\n\n", b3.Lua[0].N)
		writeOpsMarkdown(&b, b3.Lua)
	}
	if r.B5 != nil {
		writeB5Markdown(&b, r.B5)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeOpsMarkdown(b *strings.Builder, ops []opResult) {
	b.WriteString("| operation | median | p90 | p99 | min | mean |\n|---|---|---|---|---|---|\n")
	for _, op := range ops {
		name := op.Op
		if op.BudgetMs > 0 {
			name = fmt.Sprintf("%s — %.1f %% within %g ms", name, op.WithinBudget*100, op.BudgetMs)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", name, us(op.MedianU), us(op.P90U), us(op.P99U), us(op.MinU), us(op.MeanU))
	}
	b.WriteString("\n")
}

// us renders microseconds, switching to ms above 10 ms.
func us(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile is the nearest-rank percentile (p in (0, 100]); the median of
// an even count is the mean of the two middle values.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if p == 50 {
		n := len(s)
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(0, min(rank, len(s))-1)]
}

func minOf(xs []float64) float64 { return slices.Min(xs) }

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
