package accel

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	defaultDevice  = "/dev/kvm"
	defaultCPUInfo = "/proc/cpuinfo"
	// DefaultTimeout bounds the probe child; the spec fixes it at 2 s.
	DefaultTimeout = 2 * time.Second
	// reapGrace is how long we wait for a killed child to be reaped before
	// leaving it to a background reaper: a task stuck inside a KVM ioctl can
	// stay unkillable for a while and must not hold Provium up.
	reapGrace = 500 * time.Millisecond
)

// Options configures a probe. The zero value probes /dev/kvm without a cache.
type Options struct {
	CacheDir   string        // where the verdict is cached; "" disables caching
	Device     string        // default /dev/kvm
	CPUInfo    string        // default /proc/cpuinfo
	Timeout    time.Duration // default DefaultTimeout
	Executable string        // the binary to re-execute; default os.Executable()
}

func (o Options) withDefaults() Options {
	if o.Device == "" {
		o.Device = defaultDevice
	}
	if o.CPUInfo == "" {
		o.CPUInfo = defaultCPUInfo
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Result is the probe's verdict.
type Result struct {
	Usable bool   `json:"usable"`
	Reason Reason `json:"reason"` // zero when Usable
	Cached bool   `json:"-"`      // the verdict came from the cache
}

// Probe decides whether KVM is usable. It never blocks for longer than the
// timeout (plus process start-up): every check runs in a child process that is
// killed when it does not answer. Failures of the probe machinery itself are
// reported as an unusable KVM (so "auto" still falls back to TCG) and are not
// cached.
func Probe(ctx context.Context, opts Options) Result {
	opts = opts.withDefaults()
	var key cacheKey
	if opts.CacheDir != "" {
		key = currentCacheKey(opts)
		if r, ok := readCache(opts.CacheDir, key); ok {
			r.Cached = true
			return r
		}
	}
	// Absence of the device needs no child: stat cannot hang on a missing file.
	if _, err := os.Stat(opts.Device); os.IsNotExist(err) {
		r := Result{Reason: reasonNoDevice(opts.Device)}
		writeCacheIfKeyed(opts.CacheDir, key, r)
		return r
	}
	r, err := probeInChild(ctx, opts)
	if err != nil {
		return Result{Reason: reasonIoctl(fmt.Sprintf("KVM probe could not run: %v", err))}
	}
	writeCacheIfKeyed(opts.CacheDir, key, r)
	return r
}

func writeCacheIfKeyed(dir string, key cacheKey, r Result) {
	if dir == "" {
		return
	}
	// A cache that cannot be written only costs the next run another probe.
	_ = writeCache(dir, key, r)
}

func probeInChild(ctx context.Context, opts Options) (Result, error) {
	exe := opts.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return Result{}, fmt.Errorf("locating own executable: %w", err)
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("creating probe pipe: %w", err)
	}
	defer pr.Close()

	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		envChild+"=1", envDevice+"="+opts.Device, envCPUInfo+"="+opts.CPUInfo)
	cmd.Stdout = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return Result{}, fmt.Errorf("starting probe child %s: %w", exe, err)
	}
	pw.Close()

	// The reaper owns cmd.Wait; it ends when the child dies (killed below on
	// every path that does not see it exit).
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	lastStep := "the KVM probe"
	abandon := func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(reapGrace):
		}
	}
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				err := <-exited
				return Result{}, fmt.Errorf("probe child ended without a verdict: %v", err)
			}
			if step, isStep := strings.CutPrefix(line, linePrefixStep); isStep {
				lastStep = step
				continue
			}
			if js, isRes := strings.CutPrefix(line, linePrefixResult); isRes {
				var r Result
				if err := json.Unmarshal([]byte(js), &r); err != nil {
					abandon()
					return Result{}, fmt.Errorf("decoding probe verdict: %w", err)
				}
				<-exited
				return r, nil
			}
		case <-timer.C:
			abandon()
			pr.Close() // unblocks the line reader
			return Result{Reason: reasonTimeout(lastStep, opts.Timeout)}, nil
		case <-ctx.Done():
			abandon()
			pr.Close()
			return Result{}, fmt.Errorf("KVM probe: %w", ctx.Err())
		}
	}
}
