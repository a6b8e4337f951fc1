package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/initrd"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/vmm"
)

// bootTimeout bounds one boot of either kind; a boot that takes longer is
// broken, not slow.
const bootTimeout = 90 * time.Second

// markerInit is the raw baseline's /init: it prints the marker (computed,
// so the script's own text can never match) and powers off.
const markerInit = "#!/bin/sh\necho \"PVB-$((6*7))-MARK\"\nexec poweroff -f\n"

var marker = []byte("PVB-42-MARK")

// b1Result is the boot benchmark: Provium (boot → agent Hello) against raw
// QEMU (start → marker printed by /init), run as alternating pairs.
type b1Result struct {
	Boots       int       `json:"boots"`
	ProviumS    []float64 `json:"provium_s"`
	RawS        []float64 `json:"raw_s"`
	ProviumMed  float64   `json:"provium_median_s"`
	RawMed      float64   `json:"raw_median_s"`
	ProviumMin  float64   `json:"provium_min_s"`
	RawMin      float64   `json:"raw_min_s"`
	Ratio       float64   `json:"ratio_of_medians"`
	PairRatioMd float64   `json:"median_pair_ratio"`
	// RawAgentS is the decomposition run (-decompose): raw QEMU whose
	// initrd also carries the agent overlay, not started, so the gap
	// splits into unpacking the agent and running it.
	RawAgentS   []float64 `json:"raw_with_agent_bytes_s,omitempty"`
	RawAgentMed float64   `json:"raw_with_agent_bytes_median_s,omitempty"`
	Machine     string    `json:"machine_type"`
	MemoryMiB   int64     `json:"memory_mib"`
	CPUs        int       `json:"cpus"`
	Kernel      string    `json:"kernel"`
	Cmdline     string    `json:"raw_cmdline"`
}

// runB1 boots n guests of each kind, A B then B A alternately so neither
// kind always runs on a cache warmed by the other. One unmeasured boot of
// each comes first (agent overlay cache, page cache).
func runB1(ctx context.Context, env *benchEnv, n int, decompose bool) (*b1Result, error) {
	be, err := guest.New(guest.Options{Config: env.cfg, ScratchRoot: env.scratch, Accel: env.accel, Seed: 1})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	raw, err := newRawBooter(ctx, env, nil)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	var rawAgent *rawBooter
	if decompose {
		overlay, err := agentOverlay(ctx)
		if err != nil {
			return nil, err
		}
		if rawAgent, err = newRawBooter(ctx, env, overlay); err != nil {
			return nil, err
		}
		defer rawAgent.close()
	}

	fmt.Fprintln(os.Stderr, "B1: warm-up boots")
	if _, err := bootProvium(ctx, be); err != nil {
		return nil, err
	}
	if _, err := raw.boot(ctx); err != nil {
		return nil, err
	}
	res := &b1Result{Boots: n, Machine: string(raw.cfg.Machine), MemoryMiB: raw.cfg.Memory >> 20,
		CPUs: raw.cfg.CPUs, Kernel: raw.cfg.Kernel, Cmdline: raw.cfg.Cmdline}
	var pairRatios []float64
	for i := 0; i < n; i++ {
		var p, r time.Duration
		if i%2 == 0 {
			if p, err = bootProvium(ctx, be); err == nil {
				r, err = raw.boot(ctx)
			}
		} else {
			if r, err = raw.boot(ctx); err == nil {
				p, err = bootProvium(ctx, be)
			}
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "B1: pair %d/%d: provium %.3fs, raw %.3fs\n", i+1, n, p.Seconds(), r.Seconds())
		if rawAgent != nil {
			ra, err := rawAgent.boot(ctx)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "B1: decomposition %d/%d: raw with agent bytes %.3fs\n", i+1, n, ra.Seconds())
			res.RawAgentS = append(res.RawAgentS, ra.Seconds())
		}
		res.ProviumS = append(res.ProviumS, p.Seconds())
		res.RawS = append(res.RawS, r.Seconds())
		pairRatios = append(pairRatios, p.Seconds()/r.Seconds())
	}
	res.ProviumMed, res.RawMed = median(res.ProviumS), median(res.RawS)
	res.ProviumMin, res.RawMin = minOf(res.ProviumS), minOf(res.RawS)
	res.Ratio = res.ProviumMed / res.RawMed
	res.PairRatioMd = median(pairRatios)
	if len(res.RawAgentS) > 0 {
		res.RawAgentMed = median(res.RawAgentS)
	}
	return res, nil
}

// bootProvium times guest.Start (QEMU start → agent Hello), then stops it.
func bootProvium(ctx context.Context, be *guest.Backend) (time.Duration, error) {
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	start := time.Now()
	m, err := be.ForFile("bench.test.lua").Start(bctx, lab.BootSpec{Name: "b1", Path: "b1", Profile: "linux"})
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("provium boot: %w", err)
	}
	if err := m.Stop(ctx); err != nil {
		return 0, fmt.Errorf("provium stop: %w", err)
	}
	return d, nil
}

// rawBooter boots the baseline: the profile's kernel and initrd plus a
// segment whose /init prints the marker, with the machine configuration
// internal/guest would use (machine type, memory, cpus, firmware, served
// virtio-rng), but no agent.
type rawBooter struct {
	cfg    vmm.Config // template; Scratch is set per boot
	runDir *vmm.RunDir
	initrd string
}

func newRawBooter(ctx context.Context, env *benchEnv, extra []byte) (*rawBooter, error) {
	prof, err := env.cfg.Profile("linux")
	if err != nil {
		return nil, err
	}
	kernel, err := prof.ResolveKernel()
	if err != nil {
		return nil, err
	}
	if pvh, err := vmm.HasPVHNote(kernel); err != nil || !pvh {
		return nil, fmt.Errorf("kernel %s has no PVH note (%v): the baseline needs the image's vmlinux", kernel, err)
	}
	base, err := prof.BaseCmdline()
	if err != nil {
		return nil, err
	}
	cmdline, err := config.ComposeCmdline(prof.Name, base, nil, "", false)
	if err != nil {
		return nil, err
	}
	name := "raw"
	if extra != nil {
		name = "rawa"
	}
	rd, err := vmm.NewRunDir(filepath.Join(env.scratch, name))
	if err != nil {
		return nil, err
	}
	initrdPath := filepath.Join(env.scratch, name+"-initrd")
	if err := writeMarkerInitrd(prof.Initrd, extra, initrdPath); err != nil {
		rd.Remove()
		return nil, err
	}
	memory := int64(guest.DefaultMemory)
	if prof.Memory > 0 {
		memory = int64(prof.Memory)
	}
	cpus := guest.DefaultCPUs
	if prof.CPUs > 0 {
		cpus = prof.CPUs
	}
	cfg := vmm.Config{
		Name:    "raw",
		Machine: vmm.MachineType(prof.Machine),
		Accel:   env.accel,
		Memory:  memory,
		CPUs:    cpus,
		Kernel:  kernel,
		Initrd:  initrdPath,
		Cmdline: cmdline,
		RNG:     vmm.RNGServed,
	}
	return &rawBooter{cfg: cfg, runDir: rd, initrd: initrdPath}, nil
}

func (r *rawBooter) close() {
	r.runDir.Remove()
	os.Remove(r.initrd)
}

// writeMarkerInitrd writes profile initrd ++ extra (a gzip segment, may be
// nil) ++ a gzip segment holding /init.
func writeMarkerInitrd(profileInitrd string, extra []byte, out string) error {
	base, err := os.ReadFile(profileInitrd)
	if err != nil {
		return fmt.Errorf("raw initrd: %w", err)
	}
	base = append(base, extra...)
	a := initrd.NewArchive()
	if err := a.AddFile("/init", []byte(markerInit), 0o755); err != nil {
		return err
	}
	seg, err := a.Segment()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(base, seg...), 0o644); err != nil {
		return fmt.Errorf("raw initrd: %w", err)
	}
	return nil
}

// boot times vmm.Start → marker on the console, then waits for the guest's
// poweroff (not timed) and cleans up.
func (r *rawBooter) boot(ctx context.Context) (time.Duration, error) {
	cfg := r.cfg
	cfg.Scratch = r.runDir.NewMachineDir()
	cfg = cfg.WithDefaults()
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	start := time.Now()
	m, err := vmm.Start(bctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("raw boot: %w", err)
	}
	defer m.Quit(context.Background())
	rngCtx, stopRNG := context.WithCancel(ctx)
	rngDone := make(chan struct{})
	go func() {
		defer close(rngDone)
		serveRNG(rngCtx, cfg.RNGSocket())
	}()
	defer func() { stopRNG(); <-rngDone }()

	_, err = m.Console().WaitFor(bctx, 0, marker)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("raw boot: no marker (%v); console:\n%s", err, strings.Join(m.ConsoleTail(20), "\n"))
	}
	select {
	case <-m.Done():
	case <-time.After(20 * time.Second):
		return 0, errors.New("raw boot: the marker init did not power off")
	}
	return d, nil
}

// agentOverlay is the segment internal/guest appends: the agent binary and
// the worker executor.
func agentOverlay(ctx context.Context) ([]byte, error) {
	loc := &agentbin.Locator{}
	path, err := loc.Path(ctx)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	worker, err := guest.WorkerFile(ctx, loc)
	if err != nil {
		return nil, err
	}
	a, err := initrd.Overlay(bin, nil, worker)
	if err != nil {
		return nil, err
	}
	return a.Segment()
}

// serveRNG answers the guest's virtio-rng like internal/guest does for a
// seeded VM, so both kinds of boot have the same devices and peers.
func serveRNG(ctx context.Context, sock string) {
	var conn net.Conn
	for conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer conn.Close()
	_ = vmm.ServeEGD(ctx, conn, seeded(1))
}

func seeded(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "provium-bench-rng")
	return rand.NewChaCha8(key)
}
