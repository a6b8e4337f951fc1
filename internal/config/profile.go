package config

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/provium/provium/internal/units"
)

// Profile validation messages with a fixed form (20-cli-config.md §7.6).
const (
	errEmptyCmdline        = "profile `%s` has empty cmdline and no `cmdline_file`; set at least one"
	errGuestOS             = "profile `%s` has guest_os = `%s`, only `linux` and `peios` are supported"
	errNoKernel            = "profile `%s` sets neither `kernel` nor `root`; set one"
	errInjectNeedsInitrd   = "profile `%s`: inject_agent = false needs an initrd"
	errAgentBootTimeout    = "profile `%s`: agent_boot_timeout must be a positive number of seconds, got %s"
	probProfileName        = "must match `[A-Za-z0-9][A-Za-z0-9._-]*`"
	probDisks              = "must be an array of tables `{path, id, readonly}`"
	probDiskTable          = "must be a table `{path, id, readonly}`"
	probDiskIDUnique       = "must be unique among the profile's disks"
	outToken               = "{out}"
	buildDirEnv            = "PROVIUM_BUILD_DIR"
	defaultBuildDirSubpath = ".provium-build"
)

var profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Accepted enum values of profile keys.
var (
	kernelBootValues = []string{"auto", "pvh", "bzimage"}
	archValues       = []string{"x86_64"}
	machineValues    = []string{"q35", "pc", "microvm"}
	firmwareValues   = []string{"auto", "qboot", "seabios"}
)

// profile validates one raw profile. `{out}` is computed first so that path
// keys can be expanded and resolved in the same pass.
func (l *loader) profile(rp rawProfile) (*Profile, error) {
	name := rp.name
	where := fmt.Sprintf("profile `%s`:", name)
	if !profileNameRE.MatchString(name) {
		return nil, newTable(nil, where).problem("name", probProfileName, name)
	}
	m, ok := rp.value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s %s, got `%s`", where, probTable, render(rp.value))
	}
	t := newTable(m, where)
	p := &Profile{Name: name, Source: rp.source, Dir: rp.dir}

	var err error
	if p.BuildOut, err = t.path("build_out", rp.dir, l.env); err != nil {
		return nil, err
	}
	if p.Out, err = l.outDir(p); err != nil {
		return nil, err
	}
	// outPath reads a path key that may use {out}.
	outPath := func(key string) (string, error) {
		s, ok, err := t.str(key, probPath, true)
		if err != nil || !ok {
			return "", err
		}
		r, err := resolvePath(strings.ReplaceAll(s, outToken, p.Out), rp.dir, l.env)
		if err != nil {
			return "", t.problem(key, probHome, s)
		}
		return r, nil
	}
	if p.Kernel, err = outPath("kernel"); err != nil {
		return nil, err
	}
	if p.Root, err = outPath("root"); err != nil {
		return nil, err
	}
	if p.Kernel == "" && p.Root == "" {
		return nil, fmt.Errorf(errNoKernel, name)
	}
	if p.Initrd, err = outPath("initrd"); err != nil {
		return nil, err
	}
	if p.CmdlineFile, err = outPath("cmdline_file"); err != nil {
		return nil, err
	}
	cmdline, _, err := t.str("cmdline", probString, false)
	if err != nil {
		return nil, err
	}
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(cmdline, outToken, p.Out))
	if p.Cmdline == "" && p.CmdlineFile == "" {
		return nil, fmt.Errorf(errEmptyCmdline, name)
	}
	p.GuestOS = DefaultGuestOS
	if v, ok := t.get("guest_os"); ok {
		s, _ := v.(string)
		if s != "linux" && s != "peios" {
			return nil, fmt.Errorf(errGuestOS, name, render(v))
		}
		p.GuestOS = s
		p.GuestOSNamed = true
	}
	if p.InjectAgent, err = t.boolean("inject_agent", true); err != nil {
		return nil, err
	}
	if !p.InjectAgent && p.Initrd == "" {
		return nil, fmt.Errorf(errInjectNeedsInitrd, name)
	}
	if p.AgentOverlayPath, err = outPath("agent_overlay_path"); err != nil {
		return nil, err
	}
	if p.AgentBootTimeout, err = agentBootTimeout(t, name); err != nil {
		return nil, err
	}
	if p.Disks, err = l.disks(t, rp, p.Out); err != nil {
		return nil, err
	}
	build, _, err := t.str("build", probNonEmpty, true)
	if err != nil {
		return nil, err
	}
	p.Build = strings.ReplaceAll(build, outToken, p.Out)
	mem, err := t.size("memory", DefaultMemory)
	if err != nil {
		return nil, err
	}
	p.Memory = units.RoundUpMiB(mem)
	p.CPUs = DefaultCPUs
	if v, ok := t.get("cpus"); ok {
		n, isInt := v.(int64)
		if !isInt || n < 1 || n > math.MaxInt32 {
			return nil, t.problem("cpus", probPosInt, v)
		}
		p.CPUs = int(n)
	}
	if p.KernelBoot, err = t.enum("kernel_boot", probKernelBoot, DefaultKernelBoot, kernelBootValues...); err != nil {
		return nil, err
	}
	if p.Arch, err = t.enum("arch", probArch, DefaultArch, archValues...); err != nil {
		return nil, err
	}
	if p.Machine, err = t.enum("machine", probMachine, DefaultMachine, machineValues...); err != nil {
		return nil, err
	}
	if p.Firmware, err = t.enum("firmware", probFirmware, DefaultFirmware, firmwareValues...); err != nil {
		return nil, err
	}
	l.warnUnknown(rp.source, rp.prefix, t)
	return p, nil
}

// outDir is the profile's `{out}`: build_out, else $PROVIUM_BUILD_DIR/<name>,
// else <config dir>/.provium-build/<name> (20-cli-config.md §7.4).
func (l *loader) outDir(p *Profile) (string, error) {
	if p.BuildOut != "" {
		return p.BuildOut, nil
	}
	if base, ok := l.env.lookup(buildDirEnv); ok {
		abs, err := filepath.Abs(filepath.Join(base, p.Name))
		if err != nil {
			return "", fmt.Errorf("%s: %w", buildDirEnv, err)
		}
		return abs, nil
	}
	return filepath.Join(l.dir, defaultBuildDirSubpath, p.Name), nil
}

// agentBootTimeout reads a positive, finite number of seconds.
func agentBootTimeout(t *table, name string) (time.Duration, error) {
	v, ok := t.get("agent_boot_timeout")
	if !ok {
		return DefaultAgentBootTimeout, nil
	}
	f, isNum := number(v)
	if !isNum || f <= 0 || math.IsInf(f, 0) {
		return 0, fmt.Errorf(errAgentBootTimeout, name, renderQuoted(v))
	}
	return units.SecondsToDuration(f)
}

// disks reads `disks`: tables with a path, a unique id and readonly.
func (l *loader) disks(t *table, rp rawProfile, out string) ([]Disk, error) {
	v, ok := t.get("disks")
	if !ok {
		return nil, nil
	}
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, e := range x {
			elems = append(elems, e)
		}
	default:
		return nil, t.problem("disks", probDisks, v)
	}
	seen := map[string]bool{}
	disks := make([]Disk, 0, len(elems))
	for i, e := range elems {
		key := fmt.Sprintf("disks[%d]", i)
		m, isMap := e.(map[string]any)
		if !isMap {
			return nil, t.problem(key, probDiskTable, e)
		}
		dt := newTable(m, t.where)
		dt.keyPrefix = key + "."
		var d Disk
		raw, ok, err := dt.str("path", probPath, true)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, dt.problem("path", probPath, missing{})
		}
		if d.Path, err = resolvePath(strings.ReplaceAll(raw, outToken, out), rp.dir, l.env); err != nil {
			return nil, dt.problem("path", probHome, raw)
		}
		if d.ID, ok, err = dt.str("id", probNonEmpty, true); err != nil {
			return nil, err
		}
		if !ok {
			return nil, dt.problem("id", probNonEmpty, missing{})
		}
		if seen[d.ID] {
			return nil, dt.problem("id", probDiskIDUnique, d.ID)
		}
		seen[d.ID] = true
		if d.ReadOnly, err = dt.boolean("readonly", false); err != nil {
			return nil, err
		}
		l.warnUnknown(rp.source, rp.prefix+"disks.", dt)
		disks = append(disks, d)
	}
	return disks, nil
}
