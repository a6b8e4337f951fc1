package cli

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/units"
)

// parseSizing checks --mem, --cpus and --cpu-overcommit (20-cli-config.md
// §3.5); an out-of-range overcommit is clamped with the notice.
func (s *session) parseSizing() (sched.Sizing, error) {
	var sz sched.Sizing
	rf := s.rf
	if rf.mem != "" {
		n, err := units.ParseSize(rf.mem)
		if err != nil {
			return sz, usagef("--mem: %v", err)
		}
		sz.Memory = n
	}
	if rf.cpus < 0 {
		return sz, usagef("--cpus: expected a number ≥ 1, got %d", rf.cpus)
	}
	sz.CPUs = rf.cpus
	raw := strings.TrimSpace(rf.overcommit)
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return sz, usagef("--cpu-overcommit: expected a number, got `%s`", rf.overcommit)
	}
	v, notice := sched.ClampOvercommit(f, raw)
	if notice != "" {
		s.notice("%s", notice)
	}
	sz.Overcommit = v
	return sz, nil
}

// newPool sizes the run's pool from the host (or --mem/--cpus) and says
// under -v when the host has no pressure information; obs hears its
// dispatch and claim events.
func (s *session) newPool(cfg *config.Config, obs sched.Observer) (*sched.Pool, error) {
	root := s.env.HostRoot
	if root == "" {
		root = "/"
	}
	total := sched.Total(sched.Host{}, s.sizing)
	if s.sizing.Memory == 0 || s.sizing.CPUs == 0 {
		host, err := sched.ReadHost(root, runtime.NumCPU())
		if err != nil {
			return nil, fmt.Errorf("%w (set --mem)", err)
		}
		total = sched.Total(host, s.sizing)
	}
	pressure := sched.Pressure{Root: root}
	if _, ok := pressure.Read(); !ok && cfg.PSIThreshold > 0 && s.pf.verbose {
		s.notice("%s", sched.MsgNoPSI)
	}
	return sched.New(sched.Config{
		Total:        total,
		Jobs:         s.rf.jobs,
		PSIThreshold: cfg.PSIThreshold,
		Pressure:     pressure.Read,
		Observer:     obs,
	}), nil
}

// tuneKSM makes the best-effort KSM tuning once per invocation
// (30-runtime.md B10); --no-ksm skips it and its line, -q silences the line.
func (s *session) tuneKSM() {
	if s.rf.noKSM {
		return
	}
	s.ksmOnce.Do(func() {
		dir := s.env.KSMDir
		if dir == "" {
			dir = sched.KSMDir
		}
		line := sched.TuneKSM(dir)
		if !s.pf.quiet {
			s.notice("%s", line)
		}
	})
}

// declaredClaim is the file's literal top-level provium:claim, found by the
// discovery scan (30-runtime.md B3); nil when there is none or the file
// cannot be read (the runner reports that).
func declaredClaim(f discover.File) *sched.Amount {
	src, err := os.ReadFile(f.Abs)
	if err != nil {
		return nil
	}
	c := fixture.Scan(src).Claim
	if c == nil {
		return nil
	}
	return &sched.Amount{Memory: c.MemoryBytes, CPUs: c.CPUs}
}
