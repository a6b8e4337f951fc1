package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/provium/provium/internal/cli"
)

// b5File is one B5 test file: one VM, five vm:run.
const b5File = `
local vm = provium:vm("v", "linux", {agent_timeout = 600})
test("five runs", function(t)
  vm:boot()
  for i = 1, 5 do t:assert_eq(vm:run("echo " .. i).stdout, i .. "\n") end
end)
`

// b5Result is B5 (50-performance.md): N single-VM files through the
// default pool against the same files one at a time, and the wall-time
// curve over the number of files.
type b5Result struct {
	Files     int     `json:"files"`
	Cores     int     `json:"cores"`
	ParallelS float64 `json:"parallel_s"`
	SerialS   float64 `json:"serial_s"`
	// Ratio is wall(parallel) ÷ (wall(serial) ÷ cores); target ≤ 1.15.
	Ratio float64     `json:"ratio"`
	Curve []b5CurvePt `json:"curve"`
}

type b5CurvePt struct {
	Files int     `json:"files"`
	WallS float64 `json:"wall_s"`
	Error string  `json:"error,omitempty"` // the run did not pass
}

// runB5 runs the CLI in-process over generated suites in scratch.
func runB5(ctx context.Context, env *benchEnv, curve []int) (*b5Result, error) {
	res := &b5Result{Files: 8, Cores: runtime.NumCPU()}
	var err error
	if res.ParallelS, err = b5Run(ctx, env, 8); err != nil {
		return nil, fmt.Errorf("parallel: %w", err)
	}
	if res.SerialS, err = b5Run(ctx, env, 8, "-j", "1"); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	res.Ratio = res.ParallelS / (res.SerialS / float64(res.Cores))
	for _, n := range curve {
		s, err := b5Run(ctx, env, n)
		pt := b5CurvePt{Files: n, WallS: s}
		if err != nil {
			// One failed point (a boot timing out on a loaded host) does
			// not cost the others.
			pt.Error = err.Error()
			fmt.Fprintf(os.Stderr, "provium-bench: B5 curve, %d files: %v\n", n, err)
		}
		res.Curve = append(res.Curve, pt)
	}
	return res, nil
}

// b5Run writes n files and runs `provium --no-ksm --accel <a> [extra] .`
// over them, returning the wall time.
func b5Run(ctx context.Context, env *benchEnv, n int, extra ...string) (float64, error) {
	dir, err := os.MkdirTemp(env.scratch, "b5-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "provium.toml"), []byte(env.img.Profile), 0o644); err != nil {
		return 0, err
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.test.lua", i)), []byte(b5File), 0o644); err != nil {
			return 0, err
		}
	}
	var stdout, stderr strings.Builder
	args := append([]string{"--no-ksm", "--accel", string(env.accel), "-q"}, extra...)
	args = append(args, ".")
	start := time.Now()
	code := cli.Execute(ctx, cli.Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		LookupEnv: os.LookupEnv, Cwd: dir,
	}, args)
	wall := time.Since(start).Seconds()
	if code != 0 {
		return 0, fmt.Errorf("provium exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	return wall, nil
}

func writeB5Markdown(b *strings.Builder, r *b5Result) {
	fmt.Fprintf(b, "### B5 scheduling: %d single-VM files × 5 vm:run (%d cores)\n\n", r.Files, r.Cores)
	b.WriteString("| what | wall | target |\n|---|---|---|\n")
	fmt.Fprintf(b, "| default pool | %.1f s | |\n", r.ParallelS)
	fmt.Fprintf(b, "| one at a time (-j 1) | %.1f s | |\n", r.SerialS)
	fmt.Fprintf(b, "| wall(parallel) ÷ (wall(serial) ÷ cores) | %.3f | ≤ 1.15 |\n\n", r.Ratio)
	if len(r.Curve) > 0 {
		b.WriteString("| files | wall (default pool) | per file |\n|---|---|---|\n")
		for _, p := range r.Curve {
			if p.Error != "" {
				fmt.Fprintf(b, "| %d | failed (see stderr) | |\n", p.Files)
				continue
			}
			fmt.Fprintf(b, "| %d | %.1f s | %.2f s |\n", p.Files, p.WallS, p.WallS/float64(p.Files))
		}
		b.WriteString("\n")
	}
}
