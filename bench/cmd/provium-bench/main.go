// Command provium-bench measures Provium against its baselines
// (50-performance.md) and writes the results as a markdown table on stdout
// and as JSON under bench/results/<date>.json.
//
// B1 boots the default image through internal/guest (boot → agent Hello)
// and, alternating with it, raw QEMU booting the same kernel and initrd
// plus a tiny /init that prints a marker and powers off, with the same
// machine configuration (both built as a vmm.Config). B3 times single agent
// operations on one booted guest, then the same guest's qemu-guest-agent
// (Debian's qemu-ga on its own virtio-serial port) against the Provium
// agent in interleaved pairs (qga.go).
//
// Guests run one at a time: the machines this runs on are small and TCG
// is CPU-bound, so concurrent guests would measure contention instead —
// except in B5, which measures the scheduler: N single-VM files through
// the default pool against the same files with -j 1 (b5.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/image"
	"github.com/provium/provium/internal/vmm"
)

func main() {
	// First: when started as the KVM probe child, probe and exit.
	accel.MaybeRunProbeChild()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "provium-bench: %v\n", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	boots    int
	ops      int
	warmup   int
	imageDir string
	fromDebs string
	outDir   string
	accel    string
	skipB1   bool
	decomp   bool
	skipB3   bool
	skipQGA  bool
	skipLua  bool
	onlyLua  bool
	luaFile  string
	skipB5   bool
	curve    string
}

func parseFlags() (*options, error) {
	o := &options{}
	flag.IntVar(&o.boots, "boots", 5, "B1: boots of each kind (Provium and raw QEMU), alternating")
	flag.IntVar(&o.ops, "ops", 500, "B3: measured iterations per operation")
	flag.IntVar(&o.warmup, "warmup", 20, "B3: unmeasured iterations per operation first")
	flag.StringVar(&o.imageDir, "image", "", "default image directory (default ~/.cache/provium/image; built when missing)")
	flag.StringVar(&o.fromDebs, "from-debs", "", "build the image from the .debs in this directory instead of apt-get download")
	flag.StringVar(&o.outDir, "out", "bench/results", "directory for <date>.json")
	flag.StringVar(&o.accel, "accel", "auto", "acceleration: auto, kvm or tcg")
	flag.BoolVar(&o.skipB1, "skip-b1", false, "skip the boot benchmark")
	flag.BoolVar(&o.decomp, "decompose", false, "B1: also boot raw QEMU with the agent's bytes in the initrd (not run)")
	flag.BoolVar(&o.skipB3, "skip-b3", false, "skip the operation-latency benchmark")
	flag.BoolVar(&o.skipQGA, "skip-qga", false, "B3: skip the qemu-guest-agent comparison")
	flag.BoolVar(&o.skipLua, "skip-b3-lua", false, "B3: skip the operations timed through the Lua binding")
	flag.BoolVar(&o.onlyLua, "b3-lua-only", false, "B3: only the operations timed through the Lua binding")
	flag.StringVar(&o.luaFile, "b3-lua-script", "", "B3: time this Lua file instead of the built-in operations (it gets N and WARMUP as ..., and bench_begin(name, budget_ms?), bench_now(), bench_sample(name, t0))")
	flag.BoolVar(&o.skipB5, "skip-b5", false, "skip the scheduling benchmark")
	flag.StringVar(&o.curve, "b5-curve", "1,2,4,8,16", "B5: file counts of the wall-time curve (comma-separated; empty = none)")
	flag.Parse()
	if flag.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if o.onlyLua && o.skipLua {
		return nil, errors.New("-b3-lua-only and -skip-b3-lua exclude each other")
	}
	if o.boots < 1 || o.ops < 1 || o.warmup < 0 {
		return nil, errors.New("-boots and -ops must be ≥ 1, -warmup ≥ 0")
	}
	return o, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	img, err := image.Build(ctx, image.Options{Out: o.imageDir, FromDebs: o.fromDebs, Progress: os.Stderr})
	if err != nil {
		return fmt.Errorf("default image: %w", err)
	}
	cfg, err := imageConfig(img)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp("/tmp", "pvb-")
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer os.RemoveAll(scratch)

	dec, err := accel.Resolve(ctx, o.accel, "-accel", accel.Options{CacheDir: scratch})
	if err != nil {
		return err
	}
	if dec.Notice != "" {
		fmt.Fprintln(os.Stderr, dec.Notice)
	}
	env := &benchEnv{cfg: cfg, img: img, scratch: scratch, accel: vmm.Accel(dec.Accel)}

	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machineInfo(ctx, string(dec.Accel), img)}
	if !o.skipB1 {
		b1, err := runB1(ctx, env, o.boots, o.decomp)
		if err != nil {
			return fmt.Errorf("B1: %w", err)
		}
		rep.B1 = b1
	}
	if !o.skipB3 {
		b3 := &b3Result{}
		if !o.onlyLua {
			if b3, err = runB3(ctx, env, o.warmup, o.ops, !o.skipQGA); err != nil {
				return fmt.Errorf("B3: %w", err)
			}
		}
		if !o.skipLua {
			script := b3LuaScript
			if o.luaFile != "" {
				b, err := os.ReadFile(o.luaFile)
				if err != nil {
					return fmt.Errorf("-b3-lua-script: %w", err)
				}
				script = string(b)
			}
			if b3.Lua, err = runB3Lua(ctx, env, script, o.warmup, o.ops); err != nil {
				return fmt.Errorf("B3 (Lua): %w", err)
			}
		}
		rep.B3 = b3
	}
	if !o.skipB5 {
		curve, err := parseCurve(o.curve)
		if err != nil {
			return err
		}
		b5, err := runB5(ctx, env, curve)
		if err != nil {
			return fmt.Errorf("B5: %w", err)
		}
		rep.B5 = b5
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	if err := rep.writeMarkdown(os.Stdout); err != nil {
		return err
	}
	path := filepath.Join(o.outDir, time.Now().UTC().Format("2006-01-02")+".json")
	if err := rep.writeJSON(path); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "provium-bench: wrote %s\n", path)
	return nil
}

// parseCurve parses -b5-curve.
func parseCurve(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-b5-curve: expected counts ≥ 1, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchEnv is what every benchmark shares.
type benchEnv struct {
	cfg     *config.Config
	img     *image.Result
	scratch string
	accel   vmm.Accel
}

// imageConfig loads the image's profile as a provium.toml would.
func imageConfig(img *image.Result) (*config.Config, error) {
	dir, err := os.MkdirTemp("", "provium-bench-config-")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, config.FileName)
	if err := os.WriteFile(path, []byte(img.Profile), 0o644); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return config.Load(path)
}
