// Package guest boots Provium guests: it turns a VM's profile and boot
// options into a QEMU machine (internal/vmm) with the agent injected into
// its initramfs (internal/initrd), waits for the agent's Hello over the
// virtio-serial channel (internal/agentclient), and implements lab.Backend
// and lab.Machine on top of them.
package guest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/initrd"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/netsim"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/vmm"
)

// Defaults when neither boot options nor the profile say otherwise.
const (
	DefaultMemory       = 512 << 20
	DefaultCPUs         = 1
	DefaultAgentTimeout = 30 * time.Second
	// consoleTailLines is how much console the errors of operations on
	// a dead VM and a diagnose without the agent carry.
	consoleTailLines = 50
	// A boot failure carries more: tests that expect a boot to fail
	// (`pcall(vm.boot, vm)`) search the error for markers from early in
	// that boot. 256 lines hold a whole `quiet` boot plus a few hundred
	// lines of init output; 32 KiB keeps one error a size that reports,
	// JUnit files and event streams carry without trouble.
	bootFailureTailLines = 256
	bootFailureTailBytes = 32 << 10
	// consoleDrainWait is how long a boot failure after QEMU exited waits
	// for the console's last bytes.
	consoleDrainWait = time.Second
	// agentErrExitWait is how long a failed agent handshake waits to see
	// whether QEMU is exiting (then the boot error says so).
	agentErrExitWait = 2 * time.Second
)

// Options configure a Backend shared by every file of a run.
type Options struct {
	Config *config.Config
	Agent  *agentbin.Locator
	// ScratchRoot holds run-<pid>/ and the caches (agent overlay, kernels).
	ScratchRoot string
	Accel       vmm.Accel
	// Seed is the run seed from which per-VM rng seeds derive.
	Seed uint64
	// Prepare, when set, runs before a profile's first boot (the profile's
	// `build` command).
	Prepare func(ctx context.Context, profile string) error
	// SerialPorts names extra virtio-serial ports every machine gets beside
	// the agent's (at most vmm.MaxExtraPorts), e.g. "org.qemu.guest_agent.0"
	// for the benchmark's qemu-guest-agent. Port i is backed by the unix
	// socket <machine scratch>/port<i>.sock that QEMU listens on; callers
	// find it in VMM().Config().ExtraPorts. Snapshots restore only into a
	// backend with the same list (the devices must match). Empty: none.
	SerialPorts []string
	// Hooks hear machines spawn and exit (hooks.go).
	Hooks Hooks
}

// Backend starts guests. It is safe for concurrent use by many files.
type Backend struct {
	opts    Options
	runDir  *vmm.RunDir
	cache   *initrd.Cache
	kernels *kernelCache

	overlayOnce sync.Once
	overlay     []byte
	overlayErr  error

	snap snapState // snapshot.go

	netOnce sync.Once
	net     *netsim.Host
}

// New creates the run directory (removed by Close) and the caches.
func New(opts Options) (*Backend, error) {
	if opts.Agent == nil {
		opts.Agent = &agentbin.Locator{}
	}
	if opts.Accel == "" {
		opts.Accel = vmm.AccelTCG
	}
	if err := os.MkdirAll(opts.ScratchRoot, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	_, _ = vmm.SweepDeadRuns(opts.ScratchRoot)
	rd, err := vmm.NewRunDir(opts.ScratchRoot)
	if err != nil {
		return nil, err
	}
	return &Backend{
		opts:    opts,
		runDir:  rd,
		cache:   initrd.NewCache(filepath.Join(opts.ScratchRoot, "agent-overlay-cache")),
		kernels: newKernelCache(filepath.Join(opts.ScratchRoot, "kernel-cache")),
	}, nil
}

// Close removes the run directory. Machines must be stopped first.
func (b *Backend) Close() error { return b.runDir.Remove() }

// ForFile returns the lab.Backend of one test file: seeds derive from the
// run seed, the file and the VM name, so scheduling cannot change them.
func (b *Backend) ForFile(file string) lab.Backend { return &fileBackend{b: b, file: file} }

type fileBackend struct {
	b    *Backend
	file string
}

func (f *fileBackend) Start(ctx context.Context, spec lab.BootSpec) (lab.Machine, error) {
	return f.b.start(ctx, f.file, spec)
}

// derivedSeed mixes the run seed with the file and the VM path.
func (b *Backend) derivedSeed(file, vmPath string) uint64 {
	h := fnv.New64a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], b.opts.Seed)
	h.Write(s[:])
	io.WriteString(h, file+"\x00rng\x00"+vmPath)
	return h.Sum64()
}

// agentOverlay is the gzip segment holding the agent binary, built once.
func (b *Backend) agentOverlay(ctx context.Context) ([]byte, error) {
	b.overlayOnce.Do(func() { b.overlay, b.overlayErr = BuildOverlay(ctx, b.opts.Agent) })
	return b.overlay, b.overlayErr
}

// workerExe is the worker executor's content, for guests whose image
// has none beside the agent.
func (b *Backend) workerExe(ctx context.Context) ([]byte, error) {
	f, err := WorkerFile(ctx, b.opts.Agent)
	return f.Content, err
}

// BuildOverlay is the agent overlay of the located agent: one gzip'd cpio
// member holding /sbin/provium-agent and /sbin/provium-worker.
func BuildOverlay(ctx context.Context, l *agentbin.Locator) ([]byte, error) {
	path, err := l.Path(ctx)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	worker, err := WorkerFile(ctx, l)
	if err != nil {
		return nil, err
	}
	a, err := initrd.Overlay(bin, nil, worker)
	if err != nil {
		return nil, fmt.Errorf("agent overlay: %w", err)
	}
	return a.Segment()
}

// WorkerFile is the overlay entry of the worker executor the agent starts
// for vm:spawn_worker (next to the agent).
func WorkerFile(ctx context.Context, l *agentbin.Locator) (initrd.File, error) {
	path, err := l.WorkerPath(ctx)
	if err != nil {
		return initrd.File{}, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return initrd.File{}, fmt.Errorf("worker: %w", err)
	}
	return initrd.File{Path: initrd.WorkerPath, Content: bin, Mode: 0o755, HasMode: true}, nil
}

// plan is everything resolved from the profile and the boot options.
type plan struct {
	kernel, initrd, cmdline string
	memory                  int64
	cpus                    int
	agentTimeout            time.Duration
	machine                 vmm.MachineType
	seed                    uint64
	boot                    proto.BootInfo
}

func (b *Backend) resolve(ctx context.Context, file string, spec lab.BootSpec) (*plan, *config.Profile, error) {
	if b.opts.Config == nil {
		return nil, nil, errors.New("no configuration loaded")
	}
	prof, err := b.opts.Config.Profile(spec.Profile)
	if err != nil {
		return nil, nil, err
	}
	kernel, err := prof.ResolveKernel()
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(kernel); err != nil {
		return nil, nil, fmt.Errorf("profile `%s`: kernel `%s`: %v", prof.Name, kernel, unwrapPath(err))
	}
	if prof.Initrd != "" {
		if _, err := os.Stat(prof.Initrd); err != nil {
			return nil, nil, fmt.Errorf("profile `%s`: initrd `%s`: %v", prof.Name, prof.Initrd, unwrapPath(err))
		}
	}
	p := &plan{machine: vmm.MachineType(prof.Machine)}
	if p.kernel, err = b.kernels.bootable(ctx, prof.Name, kernel, prof.KernelBoot); err != nil {
		return nil, nil, err
	}
	base, err := prof.BaseCmdline()
	if err != nil {
		return nil, nil, err
	}
	appendStr := ""
	if spec.Opts.KernelCmdlineAppend != nil {
		appendStr = *spec.Opts.KernelCmdlineAppend
	}
	if p.cmdline, err = config.ComposeCmdline(prof.Name, base, spec.Opts.KernelCmdline, appendStr, prof.InjectAgent); err != nil {
		return nil, nil, err
	}
	p.memory, p.cpus = vmSize(prof, spec.Opts)
	p.agentTimeout = DefaultAgentTimeout
	if prof.AgentBootTimeout > 0 {
		p.agentTimeout = prof.AgentBootTimeout
	}
	if spec.Opts.AgentTimeout != nil {
		p.agentTimeout = *spec.Opts.AgentTimeout
	}
	p.seed = b.derivedSeed(file, spec.Path)
	if spec.Opts.RNGSeed != nil {
		p.seed = *spec.Opts.RNGSeed
	}
	seed := proto.Seed(p.seed)
	p.boot = proto.BootInfo{VMName: spec.Name, RNGSeed: &seed}
	if t := spec.Opts.InitialTime; t != nil {
		secs := float64(t.UnixNano()) / 1e9
		p.boot.InitialTime = &secs
	}
	return p, prof, nil
}

// vmSize is a VM's memory and vCPUs: boot options, else the profile, else
// the built-in defaults (20-cli-config.md §7.3).
func vmSize(prof *config.Profile, opts lab.BootOpts) (memory int64, cpus int) {
	memory, cpus = DefaultMemory, DefaultCPUs
	if prof.Memory > 0 {
		memory = int64(prof.Memory)
	}
	if opts.Memory != nil {
		memory = int64(*opts.Memory)
	}
	if prof.CPUs > 0 {
		cpus = prof.CPUs
	}
	if opts.CPUs != nil {
		cpus = *opts.CPUs
	}
	return memory, cpus
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// filesSegment builds the per-boot archive: boot.json plus the `files`
// boot option.
func filesSegment(p *plan, files []lab.FileSpec) ([]byte, error) {
	bootJSON, err := json.Marshal(p.boot)
	if err != nil {
		return nil, err
	}
	entries := []initrd.File{{Path: initrd.BootJSONPath, Content: bootJSON, Mode: 0o644, HasMode: true}}
	for _, f := range files {
		entries = append(entries, initrd.File{Path: f.Path, Content: []byte(f.Content), Mode: int64(f.Mode), HasMode: true})
	}
	a, err := initrd.FilesArchive(entries)
	if err != nil {
		return nil, fmt.Errorf("boot_opts.files: %w", err)
	}
	return a.Segment()
}

func (b *Backend) start(ctx context.Context, file string, spec lab.BootSpec) (lab.Machine, error) {
	if b.opts.Prepare != nil {
		if err := b.opts.Prepare(ctx, spec.Profile); err != nil {
			return nil, err
		}
	}
	p, prof, err := b.resolve(ctx, file, spec)
	if err != nil {
		return nil, err
	}
	charge, err := chargeVM(ctx, spec, p)
	if err != nil {
		return nil, err
	}
	defer charge.dropUnlessKept()
	dir := b.runDir.NewMachineDir()
	// The merged initrd sits beside the machine dir (which vmm.Start
	// creates) and goes once QEMU has loaded it.
	initrdPath := dir + "-initrd"
	defer os.Remove(initrdPath)
	filesSeg, err := filesSegment(p, spec.Opts.Files)
	if err != nil {
		return nil, err
	}
	if p.initrd, err = b.mergeInitrd(ctx, prof, filesSeg, initrdPath); err != nil {
		return nil, err
	}
	cfg := b.machineConfig(p, prof, spec.Path, dir)
	if cfg.NICs, err = prepareNICs(dir, spec.NICs); err != nil {
		return nil, err
	}
	reset := &resetHook{}
	cfg.OnGuestReset = reset.fire
	disks := &diskSet{dir: dir}
	specs, err := bootDisks(prof, spec.Opts.Disks)
	if err != nil {
		return nil, err
	}
	if cfg.Disks, err = disks.prepareAll(specs, spec.DiskControl); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	began := time.Now()
	m, err := vmm.Start(ctx, cfg)
	if err != nil {
		disks.closeAll()
		return nil, err
	}
	g := newMachine(m, p.agentTimeout, spec.OnExit)
	g.workerExe = b.workerExe
	g.life = b.newLife(file, spec.Path)
	g.disks = disks
	g.charge = charge.keep()
	g.net.boot(spec.NICs)
	reset.m.Store(g)
	g.origin = &origin{b: b, name: spec.Name, profile: spec.Profile, plan: p, profileInitrd: prof.Initrd, timeControlled: spec.Opts.InitialTime != nil}
	// The stream flows from the start (a boot stream, rngfeed.go): holding
	// it back until the agent answered left the kernel's hwrng thread
	// blocked in its first read, and a boot could hang (agent silent,
	// console empty) when the agent touched the hwrng core meanwhile.
	g.rng = newRNGFeed(p.seed)
	go g.serveRNG()
	if err = g.connect(ctx); err != nil {
		tail := g.failureDetail()
		_ = g.Stop(context.Background())
		return nil, fmt.Errorf("%w%s", err, tail)
	}
	g.syncHWRNG(ctx)
	g.life.spawn(spec.Profile, p.memory, p.cpus, "boot", began)
	go g.watch()
	return g, nil
}

// EnvOverlay names a prebuilt agent overlay (a gzip'd cpio holding
// /sbin/provium-agent and /sbin/provium-worker) for profiles without
// agent_overlay_path.
const EnvOverlay = "PROVIUM_OVERLAY"

// profileOverlay is the profile's agent_overlay_path (else PROVIUM_OVERLAY)
// read as is, or the overlay built from the located agent.
func (b *Backend) profileOverlay(ctx context.Context, prof *config.Profile) ([]byte, error) {
	path := prof.AgentOverlayPath
	if path == "" {
		path = os.Getenv(EnvOverlay)
	}
	if path == "" {
		return b.agentOverlay(ctx)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile `%s`: agent overlay `%s`: %v", prof.Name, path, unwrapPath(err))
	}
	return data, nil
}

// mergeInitrd writes the profile initrd ++ agent overlay (unless the
// profile opts out of injection) ++ the per-boot files segment to out.
func (b *Backend) mergeInitrd(ctx context.Context, prof *config.Profile, filesSeg []byte, out string) (string, error) {
	var overlay []byte
	if prof.InjectAgent {
		var err error
		if overlay, err = b.profileOverlay(ctx, prof); err != nil {
			return "", err
		}
	}
	path, err := b.cache.Merge(prof.Initrd, overlay, filesSeg, out)
	if err != nil {
		return "", fmt.Errorf("initrd: %w", err)
	}
	return path, nil
}

// machineConfig is the QEMU configuration of a plan. Boot and restore both
// use it: a migration stream loads only into identical devices.
func (b *Backend) machineConfig(p *plan, prof *config.Profile, name, dir string) vmm.Config {
	return vmm.Config{
		Name:    name,
		Machine: p.machine,
		Accel:   b.opts.Accel,
		Memory:  p.memory,
		CPUs:    p.cpus,
		Kernel:  p.kernel,
		Initrd:  p.initrd,
		Cmdline: p.cmdline,
		Scratch: dir,
		RNG:     vmm.RNGServed,
		BIOS:    firmwareFile(prof),
		// Upstream's -no-reboot: a guest that reboots itself is shut down.
		GuestRebootStops: prof.WrittenForUpstream(),

		ExtraPorts: b.extraPorts(dir),
	}.WithDefaults()
}

// extraPorts is Options.SerialPorts for the machine whose scratch is dir.
func (b *Backend) extraPorts(dir string) []vmm.SerialPort {
	var ps []vmm.SerialPort
	for i, name := range b.opts.SerialPorts {
		ps = append(ps, vmm.SerialPort{Name: name, Socket: filepath.Join(dir, fmt.Sprintf("port%d.sock", i))})
	}
	return ps
}

// firmwareFile maps the profile's firmware choice to QEMU's -bios file;
// "" lets vmm pick (qboot when installed). A profile that does not name
// its guest_os was written for upstream Provium, whose guests boot through
// QEMU's default SeaBIOS: "auto" keeps that for them (its banner on the
// console, an S3 resume path), and the fast qboot for profiles that say
// guest_os = "linux" (our image's).
func firmwareFile(prof *config.Profile) string {
	f := prof.Firmware
	if f == config.DefaultFirmware && prof.WrittenForUpstream() {
		f = "seabios"
	}
	switch f {
	case "seabios":
		return "bios-256k.bin"
	case "qboot":
		return vmm.DefaultQboot
	}
	return ""
}

// indent prefixes every line.
func indent(lines []string, prefix string) string {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(prefix + l + "\n")
	}
	return sb.String()
}
