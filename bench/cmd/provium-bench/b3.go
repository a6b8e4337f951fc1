package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
)

// opResult is the latency distribution of one agent operation.
type opResult struct {
	Op      string  `json:"op"`
	N       int     `json:"n"`
	MedianU float64 `json:"median_us"`
	P90U    float64 `json:"p90_us"`
	P99U    float64 `json:"p99_us"`
	MinU    float64 `json:"min_us"`
	MeanU   float64 `json:"mean_us"`
	// BudgetMs and WithinBudget: a time a caller needs the operation to
	// fit in, and the share of iterations that did (Lua operations only).
	BudgetMs     float64 `json:"budget_ms,omitempty"`
	WithinBudget float64 `json:"within_budget,omitempty"`
}

// b3Result is B3: single operations through the agent client on one
// booted guest and, unless skipped, the same guest's qemu-guest-agent
// (qga.go).
type b3Result struct {
	Ops []opResult `json:"ops"`
	// QGA is the qemu-guest-agent half and the ratios (nil with -skip-qga).
	QGA *qgaResult `json:"qemu_ga,omitempty"`
	// Lua is the same kind of operations made through the Lua binding, as
	// a test file makes them (b3lua.go; nil with -skip-b3-lua).
	Lua []opResult `json:"lua_ops,omitempty"`
	// StreamMiBps is the throughput of a guest process writing to stdout,
	// read through proc:stdout_stream's agent stream.
	StreamMiBps float64 `json:"stream_mib_per_s"`
}

// runB3 boots one guest and times each operation n times after warmup
// unmeasured ones. Operations run one at a time (one worker). With qga the
// guest also carries qemu-ga on its own virtio-serial port, compared after
// Provium's half.
func runB3(ctx context.Context, env *benchEnv, warmup, n int, qga bool) (*b3Result, error) {
	opts := guest.Options{Config: env.cfg, ScratchRoot: env.scratch, Accel: env.accel, Seed: 1}
	profile := "linux"
	var qs *qgaSetup
	if qga {
		var err error
		if qs, err = prepareQGA(ctx, env); err != nil {
			return nil, err
		}
		opts.Config, opts.SerialPorts, profile = qs.cfg, []string{qgaPortName}, qgaProfile
	}
	be, err := guest.New(opts)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	bctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	fmt.Fprintln(os.Stderr, "B3: booting")
	m, err := be.ForFile("bench.test.lua").Start(bctx, lab.BootSpec{Name: "b3", Path: "b3", Profile: profile})
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	defer m.Stop(context.Background())
	a, err := m.(*guest.Machine).Agent()
	if err != nil {
		return nil, err
	}

	const readPath, writePath = "/tmp/b3-read", "/tmp/b3-write"
	page := bytes.Repeat([]byte("provium!"), 4096/8)
	if err := a.WriteFile(ctx, readPath, page); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	w, err := a.SpawnWorker(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: spawn worker: %w", err)
	}
	defer w.Close(context.Background())
	ops := []struct {
		name string
		fn   func(context.Context, *agentclient.Client) error
	}{
		{"ping (channel round trip)", func(ctx context.Context, a *agentclient.Client) error { return a.Ping(ctx) }},
		{`exec "true" (vm:run, shell form)`, func(ctx context.Context, a *agentclient.Client) error {
			r, err := a.Exec(ctx, proto.ExecReq{Cmd: "true", Shell: true})
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", r.ExitCode)
			}
			return err
		}},
		{`exec "true" (direct)`, func(ctx context.Context, a *agentclient.Client) error {
			r, err := a.Exec(ctx, proto.ExecReq{Cmd: "true"})
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("exit code %d", r.ExitCode)
			}
			return err
		}},
		{"syscall(getpid)", func(ctx context.Context, a *agentclient.Client) error {
			r, err := a.Syscall(ctx, proto.SyscallReq{Nr: 39})
			if err == nil && r.Ret <= 0 {
				err = fmt.Errorf("getpid returned %d", r.Ret)
			}
			return err
		}},
		{"worker syscall(getpid)", func(ctx context.Context, _ *agentclient.Client) error {
			r, err := w.Syscall(ctx, proto.SyscallReq{Nr: 39})
			if err == nil && r.Ret != int64(w.Pid()) {
				err = fmt.Errorf("getpid in the worker returned %d, worker pid %d", r.Ret, w.Pid())
			}
			return err
		}},
		{"stat", func(ctx context.Context, a *agentclient.Client) error {
			_, err := a.Stat(ctx, readPath)
			return err
		}},
		{"read_file 4 KiB", func(ctx context.Context, a *agentclient.Client) error {
			b, err := a.ReadFile(ctx, readPath)
			if err == nil && len(b) != len(page) {
				err = fmt.Errorf("read %d bytes", len(b))
			}
			return err
		}},
		{"write_file 4 KiB", func(ctx context.Context, a *agentclient.Client) error {
			return a.WriteFile(ctx, writePath, page)
		}},
	}
	res := &b3Result{}
	for _, op := range ops {
		fmt.Fprintf(os.Stderr, "B3: %s × %d\n", op.name, n)
		for i := 0; i < warmup; i++ {
			if err := op.fn(ctx, a); err != nil {
				return nil, fmt.Errorf("%s: %w", op.name, err)
			}
		}
		samples := make([]float64, 0, n)
		for i := 0; i < n; i++ {
			start := time.Now()
			err := op.fn(ctx, a)
			d := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.name, err)
			}
			samples = append(samples, float64(d.Nanoseconds())/1e3)
		}
		res.Ops = append(res.Ops, summarize(op.name, samples))
	}
	if qs != nil {
		if res.QGA, err = runQGA(ctx, qs, m.(*guest.Machine), a, res.Ops, warmup, n); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(os.Stderr, "B3: stdout stream throughput")
	if res.StreamMiBps, err = streamThroughput(ctx, a, 64<<20); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	return res, nil
}

// streamThroughput has a guest process write n bytes to stdout and reads
// them through its output stream.
func streamThroughput(ctx context.Context, a *agentclient.Client, n int) (float64, error) {
	start := time.Now()
	// dd with 64 KiB blocks: busybox `head -c` itself manages only ~25 MiB/s
	// under TCG here and would be what is measured.
	p, err := a.Start(ctx, proto.ExecReq{Cmd: fmt.Sprintf("dd if=/dev/zero bs=65536 count=%d 2>/dev/null", n/65536), Shell: true})
	if err != nil {
		return 0, err
	}
	defer p.Close(ctx)
	st, err := p.Stdout(ctx)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	got := 0
	for {
		b, err := st.Next(ctx)
		if err != nil {
			break
		}
		got += len(b)
	}
	if got != n {
		return 0, fmt.Errorf("read %d of %d bytes", got, n)
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}
