package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/units"
	"github.com/provium/provium/internal/vmm"
)

// Doctor verdicts (20-cli-config.md §6), padded to 6 columns when printed.
const (
	verdictOK   = "ok"
	verdictInfo = "info"
	verdictWarn = "warn"
	verdictFail = "FAIL"
)

// finding is one line of `provium doctor`.
type finding struct {
	verdict, subject, text, fix string
}

func (f finding) write(w io.Writer) {
	fmt.Fprintf(w, "%-6s%s: %s\n", f.verdict, f.subject, f.text)
	if f.fix != "" && (f.verdict == verdictWarn || f.verdict == verdictFail) {
		fmt.Fprintf(w, "      fix: %s\n", f.fix)
	}
}

// fromPreflight turns a preflight check's error into a FAIL line; the
// preflight and doctor share the checks and their texts.
func fromPreflight(subject string, err error) finding {
	var pe *preflightError
	if errors.As(err, &pe) {
		text, _ := strings.CutPrefix(pe.problem, subject+": ")
		return finding{verdictFail, subject, text, pe.fix}
	}
	return finding{verdict: verdictFail, subject: subject, text: err.Error()}
}

// newDoctorCmd is `provium doctor`: every environment check, no early
// stop, exit 1 when one FAILs.
func newDoctorCmd(env *Env, pf *persistentFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the environment: QEMU, acceleration, vsock, cache, scratch, config, profiles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			s := &session{env: env, pf: pf}
			failed := false
			for _, f := range s.doctor(cmd.Context()) {
				f.write(env.Stdout)
				failed = failed || f.verdict == verdictFail
			}
			if failed {
				return exitCode(ExitFailed)
			}
			return nil
		},
	}
}

// doctor runs every check in the order §6 lists them.
func (s *session) doctor(ctx context.Context) []finding {
	out := []finding{{verdictOK, "version", versionString(), ""}}
	path, ok := s.env.lookup("PATH")
	if !ok {
		path = os.Getenv("PATH")
	}
	if bin, err := checkQEMU(ctx, path, 0); err != nil {
		out = append(out, fromPreflight("qemu", err))
	} else {
		v, _ := runVersion(ctx, bin, qemuVersionTimeout)
		out = append(out, finding{verdictOK, "qemu", bin + " (" + firstLine(v) + ")", ""})
	}

	cfg, cfgErr := s.loadConfig(false)
	out = append(out, s.doctorAccel(ctx, cfg))
	out = append(out, doctorVsock())
	if cfgErr != nil {
		cfg = nil
	}
	if cfg != nil {
		out = append(out, doctorCache(cfg))
		var se *vmm.ScratchError
		if err := vmm.CheckScratchRoot(cfg.ScratchDir()); errors.As(err, &se) {
			text, _ := strings.CutPrefix(se.Error(), "scratch: ")
			out = append(out, finding{verdictFail, "scratch", text, se.Fix()})
		} else if err != nil {
			out = append(out, finding{verdictFail, "scratch", err.Error(), ""})
		} else {
			out = append(out, finding{verdictOK, "scratch", cfg.ScratchDir(), ""})
		}
	}
	out = append(out, s.doctorConfig(cfg, cfgErr)...)
	return out
}

// doctorAccel says which accelerator a run would use, and why.
func (s *session) doctorAccel(ctx context.Context, cfg *config.Config) finding {
	requested, source := "auto", config.AccelSourceDefault
	scratch := ""
	if cfg != nil {
		r, src, err := cfg.Accel(s.pf.accel)
		if err != nil {
			return finding{verdictFail, "accel", err.Error(), "use auto, kvm or tcg"}
		}
		requested, source, scratch = r, src, cfg.ScratchDir()
	}
	dec, err := accel.Resolve(ctx, requested, accelSourceText(source, requested), accel.Options{CacheDir: scratch})
	var ue *accel.UnusableError
	switch {
	case errors.As(err, &ue):
		text, _ := strings.CutPrefix(ue.Error(), "accel: ")
		return finding{verdictFail, "accel", text, ue.Fix()}
	case err != nil:
		return finding{verdictFail, "accel", err.Error(), ""}
	case dec.Accel == accel.KVM:
		return finding{verdictOK, "accel", "kvm (KVM is usable)", ""}
	case dec.Probe == nil:
		return finding{verdictInfo, "accel", "tcg (requested by " + accelSourceText(source, requested) + ")", ""}
	default:
		return finding{verdictWarn, "accel", "tcg, because KVM is unusable: " + dec.Probe.Reason.Text + " (guests run slower)", dec.Probe.Reason.Fix}
	}
}

// doctorVsock reports /dev/vhost-vsock; only vm:cid() uses it.
func doctorVsock() finding {
	f, err := os.OpenFile("/dev/vhost-vsock", os.O_RDWR, 0)
	if err != nil {
		return finding{verdictInfo, "vhost-vsock", fmt.Sprintf("unusable (%v); only vm:cid() needs it, it then returns nil", unwrapPath(err)), ""}
	}
	f.Close()
	return finding{verdictInfo, "vhost-vsock", "usable; VMs get a vsock device and vm:cid() returns its CID", ""}
}

// doctorCache reports the fixture cache's use against its cap.
func doctorCache(cfg *config.Config) finding {
	dir := cfg.CacheDir()
	if err := checkWritable(dir); err != nil {
		return finding{verdictFail, "cache", fmt.Sprintf("`%s` is not writable: %v", dir, err),
			"set `[provium] cache_dir` or PROVIUM_CACHE_DIR to a writable directory"}
	}
	var used int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, ierr := d.Info(); ierr == nil {
				used += info.Size()
			}
		}
		return nil
	})
	return finding{verdictOK, "cache", fmt.Sprintf("%s: %s used of %s", dir, units.FormatBytes(uint64(used)), units.FormatBytes(cfg.CacheMaxSize)), ""}
}

// doctorConfig reports the configuration and each profile's artifacts.
func (s *session) doctorConfig(cfg *config.Config, err error) []finding {
	if err != nil {
		return []finding{{verdictFail, "config", err.Error(), "fix the file, or run without it"}}
	}
	var out []finding
	if !cfg.Exists {
		out = append(out, finding{verdictInfo, "config", "no provium.toml here; profile `linux` is the default image (built on first use)", ""})
	} else {
		out = append(out, finding{verdictOK, "config", fmt.Sprintf("%s (%d profile(s))", cfg.Path, len(cfg.ProfileNames())), ""})
	}
	for _, name := range cfg.ProfileNames() {
		out = append(out, profileFinding(cfg, name))
	}
	return out
}

// profileFinding checks that a profile's kernel and initrd exist (a
// profile with a build command may make them at first use).
func profileFinding(cfg *config.Config, name string) finding {
	subject := "profile " + name
	p, err := cfg.Profile(name)
	if err != nil {
		return finding{verdictFail, subject, err.Error(), ""}
	}
	missing := func(what, path string, err error) finding {
		v, fix := verdictFail, fmt.Sprintf("point `%s` of [profiles.%s] at an existing file", what, name)
		if p.Build != "" {
			v, fix = verdictWarn, fmt.Sprintf("run `provium prepare %s` (its build command makes it)", name)
		}
		return finding{v, subject, fmt.Sprintf("%s `%s`: %v", what, path, unwrapPath(err)), fix}
	}
	kernel, err := p.ResolveKernel()
	if err != nil {
		return finding{verdictFail, subject, err.Error(), "set `kernel` of the profile"}
	}
	if _, err := os.Stat(kernel); err != nil {
		return missing("kernel", kernel, err)
	}
	if p.Initrd != "" {
		if _, err := os.Stat(p.Initrd); err != nil {
			return missing("initrd", p.Initrd, err)
		}
	}
	text := "kernel " + kernel
	if p.Initrd != "" {
		text += ", initrd " + p.Initrd
	}
	return finding{verdictOK, subject, text, ""}
}
