package guest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// origin is what a machine needs to describe itself in a snapshot: the
// backend that started it and the plan it was started from.
type origin struct {
	b              *Backend
	name           string // the VM's name, recorded for vm fixtures
	profile        string
	plan           *plan
	profileInitrd  string // the profile's initrd ("" for none), not the merged one
	timeControlled bool
}

// snapState is the per-Backend state of snapshots: hot copies of restored
// snapshot files and the content identities of kernels and initrds.
type snapState struct {
	once sync.Once
	hot  *fixture.HotCopies

	mu     sync.Mutex
	idents map[string]string // path|size|mtime -> sha256
}

// snaps returns the backend's snapshot state, set up on first use. The hot
// copies live in the run directory, so Close removes them.
func (b *Backend) snaps() *snapState {
	s := &b.snap
	s.once.Do(func() {
		s.hot = fixture.NewHotCopies(filepath.Join(b.runDir.Path, "hot"))
		s.idents = map[string]string{}
	})
	return s
}

// HotCopies returns the run's decompressed snapshot copies, shared by every
// restore (fixture entries and scratch snapshots alike).
func (b *Backend) HotCopies() *fixture.HotCopies { return b.snaps().hot }

// identity is the content SHA-256 of a file, memoised by path, size and
// mtime; "" for no path.
func (b *Backend) identity(p string) (snapfile.Identity, error) {
	if p == "" {
		return snapfile.Identity{}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return snapfile.Identity{}, err
	}
	key := p + "|" + strconv.FormatInt(st.Size(), 10) + "|" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
	s := b.snaps()
	s.mu.Lock()
	sum, ok := s.idents[key]
	s.mu.Unlock()
	if !ok {
		f, err := os.Open(p)
		if err != nil {
			return snapfile.Identity{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return snapfile.Identity{}, fmt.Errorf("hashing %s: %w", p, err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		s.mu.Lock()
		s.idents[key] = sum
		s.mu.Unlock()
	}
	return snapfile.Identity{Path: p, SHA256: sum}, nil
}

// manifest describes a machine started from p (without members).
func (b *Backend) manifest(profile string, p *plan, profileInitrd string, timeControlled, hasRAM bool) (snapfile.Manifest, error) {
	kernel, err := b.identity(p.kernel)
	if err != nil {
		return snapfile.Manifest{}, fmt.Errorf("kernel identity: %w", err)
	}
	initrd, err := b.identity(profileInitrd)
	if err != nil {
		return snapfile.Manifest{}, fmt.Errorf("initrd identity: %w", err)
	}
	return snapfile.Manifest{
		Profile:        profile,
		MemoryBytes:    uint64(p.memory),
		CPUs:           p.cpus,
		Cmdline:        p.cmdline,
		Kernel:         kernel,
		Initrd:         initrd,
		Disks:          []snapfile.Disk{},
		NICs:           []snapfile.NIC{},
		Devices:        devices(p, b.opts.Accel),
		TimeControlled: timeControlled,
		HasRAM:         hasRAM,
	}, nil
}

// devices lists what the migration stream depends on besides size.
func devices(p *plan, accel vmm.Accel) []string {
	m := string(p.machine)
	if m == "" {
		m = string(vmm.DefaultMachine)
	}
	d := []string{"machine=" + m, "accel=" + string(accel), "rng=virtio"}
	if vmm.MachineType(m) != vmm.MachineMicroVM {
		d = append(d, fmt.Sprintf("pci-layout=%d", vmm.PCILayout))
	}
	return d
}

// Snapshot saves the running guest into a single snapshot file at path
// (written to a temporary name and renamed, so path is never half a file)
// and leaves it running, its agent session untouched: processes, workers
// and their handles carry on (10-lua-api.md §6.1).
func (g *Machine) Snapshot(ctx context.Context, path string) error {
	if l := g.life; l != nil && l.hooks.Snapshot != nil {
		began := time.Now()
		defer func() { l.hooks.Snapshot(l.file, l.vm, began, time.Since(began)) }()
	}
	if err := g.SnapshotPrepare(ctx); err != nil {
		return err
	}
	// vmm stops a running guest for the save and continues it after.
	serr := g.SnapshotSave(ctx, path)
	if ferr := g.SnapshotFinish(ctx); ferr != nil {
		return errors.Join(serr, ferr)
	}
	return serr
}

// SnapshotPrepare checks that the machine can be snapshotted. The agent
// session is left as it is: the saved guest holds it, and a restored copy
// drops it when the new host's first SYNC arrives (a SYNC is not a valid
// yamux frame), ending that copy's processes, which is what makes the old
// handles stale there; the handshake then proceeds (proto.DialSync).
func (g *Machine) SnapshotPrepare(ctx context.Context) error {
	if g.origin == nil {
		return errors.New("this machine cannot be snapshotted (unknown origin)")
	}
	if err := g.disks.checkSnapshot(g.vm.Config().Machine); err != nil {
		return err
	}
	if err := g.checkNICSnapshot(); err != nil {
		return err
	}
	_, err := g.Agent()
	return err
}

// SnapshotFinish completes a snapshot after SnapshotSave. The session was
// never interrupted, so there is nothing to re-establish; it stays a step
// of the lab protocol (internal/lab) for machines that need one.
func (g *Machine) SnapshotFinish(ctx context.Context) error {
	return nil
}

// SnapshotSave writes the snapshot file of a prepared machine. A running
// guest is stopped for the save and continued; a stopped one stays stopped
// (lab snapshots stop every VM first, so they are saved at one moment).
func (g *Machine) SnapshotSave(ctx context.Context, path string) error {
	o := g.origin
	tmp, err := os.MkdirTemp(filepath.Dir(g.vm.Config().Scratch), "snap-")
	if err != nil {
		return fmt.Errorf("snapshot scratch: %w", err)
	}
	keep := false // the members become the snapshot's hot copy
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	if err := g.disks.checkSnapshot(g.vm.Config().Machine); err != nil {
		return err
	}
	var disks []snapfile.Disk
	var members []snapfile.Member
	// Where every card sits, so a restore puts hot-plugged ones back in
	// place (the guest is stopped: nothing is plugged meanwhile).
	rootPorts, ports := g.vm.Placement()
	files, err := g.vm.SnapshotWith(ctx, tmp, func() (err error) {
		disks, members, err = g.disks.snapshot(tmp, ports)
		return err
	})
	if err != nil {
		return err
	}
	m, err := o.b.manifest(o.profile, o.plan, o.profileInitrd, o.timeControlled, files.RAM != "")
	if err != nil {
		return err
	}
	m.VMName = o.name
	m.Disks = disks
	m.NICs = g.manifestNICs(ports)
	m.RootPorts = rootPorts
	if files.RAM != "" {
		members = append(members, snapfile.Member{Name: snapfile.MemberRAM, Path: files.RAM})
	}
	members = append(members, snapfile.Member{Name: snapfile.MemberState, Path: files.State})
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	part := path + ".part"
	if err := writeSparse(part, m, members); err != nil {
		os.Remove(part)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(part, path); err != nil {
		os.Remove(part)
		return err
	}
	// Restores of this file in this run map the RAM copy just made instead
	// of extracting it again (the first restore of a big guest would
	// otherwise read its whole RAM back).
	if id, err := hotID(path); err == nil {
		hf := fixture.HotFiles{Manifest: m, Members: map[string]string{snapfile.MemberState: files.State}}
		for _, mb := range members {
			if mb.Name != snapfile.MemberState && mb.Name != snapfile.MemberRAM {
				hf.Members[mb.Name] = mb.Path
			}
		}
		if files.RAM != "" {
			hf.Members[snapfile.MemberRAM] = files.RAM
		}
		keep = o.b.HotCopies().Put(id, hf)
	}
	return nil
}

// reconnect waits for the agent of a paused or running guest. A paused
// guest cannot answer, so it is resumed for the handshake and paused again.
func (g *Machine) reconnect(ctx context.Context) error {
	running, err := g.running(ctx)
	if err != nil {
		return err
	}
	if !running {
		if err := g.vm.Resume(ctx); err != nil {
			return err
		}
		defer func() { _ = g.vm.Pause(context.WithoutCancel(ctx)) }()
	}
	if err := g.connect(ctx); err != nil {
		return fmt.Errorf("%w%s", err, g.failureDetail())
	}
	return nil
}

// running reports whether the vCPUs run (QEMU's query-status).
func (g *Machine) running(ctx context.Context) (bool, error) {
	raw, err := g.vm.Execute(ctx, "query-status", nil)
	if err != nil {
		return false, fmt.Errorf("query-status: %w", err)
	}
	var st struct {
		Running bool `json:"running"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return false, fmt.Errorf("query-status: %w", err)
	}
	return st.Running, nil
}

// Restore implements lab.Restorer.
func (f *fileBackend) Restore(ctx context.Context, spec lab.BootSpec, snapshot string) (lab.Machine, error) {
	return f.b.restore(ctx, f.file, spec, snapshot)
}

// Restore implements lab.Restorer.
func (f *lazyFile) Restore(ctx context.Context, spec lab.BootSpec, snapshot string) (lab.Machine, error) {
	b, err := f.l.get(ctx)
	if err != nil {
		return nil, err
	}
	return b.restore(ctx, f.file, spec, snapshot)
}

// hotID names a snapshot file for the run's hot copies: the same path
// rewritten is another snapshot.
func hotID(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	ino := uint64(0)
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return fmt.Sprintf("%s|%d|%d|%d", abs, st.Size(), st.ModTime().UnixNano(), ino), nil
}

// restore starts a machine from the snapshot file at snapPath: a new QEMU
// with the recorded memory, cpus and devices maps the hot copy of the RAM
// privately and loads the state; once the agent answers, the guest clock is
// re-synced unless the VM is time-controlled. Errors caused by the file's
// content wrap snapfile.ErrCorrupt (fixture.ErrCorruptEntry for hot copies).
func (b *Backend) restore(ctx context.Context, file string, spec lab.BootSpec, snapPath string) (lab.Machine, error) {
	snapMan, err := snapfile.ReadManifest(snapPath)
	if err != nil {
		return nil, err
	}
	if err := snapfile.CheckProfile(snapMan, spec.Name, spec.Profile); err != nil {
		return nil, err
	}
	mem, cpus := snapMan.MemoryBytes, snapMan.CPUs
	spec.Opts.Memory, spec.Opts.CPUs = &mem, &cpus
	p, prof, err := b.resolve(ctx, file, spec)
	if err != nil {
		return nil, err
	}
	p.memory, p.cpus = int64(mem), cpus
	p.cmdline = snapMan.Cmdline
	charge, err := chargeVM(ctx, spec, p)
	if err != nil {
		return nil, err
	}
	defer charge.dropUnlessKept()
	timeControlled := snapMan.TimeControlled || spec.Opts.InitialTime != nil
	target, err := b.manifest(spec.Profile, p, prof.Initrd, timeControlled, snapMan.HasRAM)
	if err != nil {
		return nil, err
	}
	// The disks come from the snapshot (10-lua-api.md §6.1: recorded
	// devices); so do the NICs, fitted to the VM's bridges below.
	target.Disks = snapMan.Disks
	if d := snapfile.Diff(snapMan, target); d != "" {
		return nil, fmt.Errorf("snapshot does not fit this VM: %s", d)
	}
	id, err := hotID(snapPath)
	if err != nil {
		return nil, err
	}
	hot, err := b.HotCopies().Get(ctx, id, snapPath)
	if err != nil {
		return nil, err
	}
	state := hot.Members[snapfile.MemberState]
	if state == "" {
		_ = b.HotCopies().Drop(id)
		return nil, fmt.Errorf("%w: no state member", snapfile.ErrCorrupt)
	}
	files := vmm.SnapshotFiles{State: state, RAM: hot.Members[snapfile.MemberRAM]}

	// The guest's memory comes from the snapshot, so the per-boot files
	// segment is not needed: the cached base initrd (profile + agent) is
	// what QEMU loads.
	dir := b.runDir.NewMachineDir()
	initrdPath := dir + "-initrd"
	defer os.Remove(initrdPath)
	if p.initrd, err = b.mergeInitrd(ctx, prof, nil, initrdPath); err != nil {
		return nil, err
	}
	cfg := b.machineConfig(p, prof, spec.Path, dir)
	cfg.RootPorts = snapMan.RootPorts
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	cfgNICs, nicDevs, extraNICs, err := fitNICs(dir, snapMan.NICs, spec.NICs)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg.NICs = cfgNICs
	parked := &netState{devs: nicDevs}
	reset := &resetHook{}
	cfg.OnGuestReset = reset.fire
	disks := &diskSet{dir: dir}
	if cfg.Disks, err = disks.restore(snapMan.Disks, hot.Members, spec.DiskControl); err != nil {
		parked.closeParked()
		os.RemoveAll(dir)
		return nil, err
	}
	began := time.Now()
	m, err := vmm.Restore(ctx, cfg, files)
	if err != nil {
		parked.closeParked()
		disks.closeAll()
		// QEMU refusing the state is the snapshot's fault (30-runtime.md A9).
		return nil, fmt.Errorf("%w: %v", snapfile.ErrCorrupt, err)
	}
	g := newMachine(m, p.agentTimeout, spec.OnExit)
	g.workerExe = b.workerExe
	g.life = b.newLife(file, spec.Path)
	g.disks = disks
	g.charge = charge.keep()
	reset.m.Store(g)
	g.origin = &origin{b: b, name: spec.Name, profile: spec.Profile, plan: p, profileInitrd: prof.Initrd, timeControlled: timeControlled}
	g.net.devs = nicDevs
	// The restored guest is past its boot and its /dev/hwrng sync: it reads
	// on from what its kernel buffered, then the seed's stream from its
	// start again.
	g.rng = newRNGFeed(p.seed)
	g.rng.restart()
	go g.serveRNG()
	if err := g.linkParked(ctx); err != nil {
		_ = g.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("unlinking the restored guest's parked NICs: %w", err)
	}
	if err := m.Resume(ctx); err != nil {
		_ = g.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("resuming the restored guest: %w", err)
	}
	if err := g.connect(ctx); err != nil {
		tail := g.failureDetail()
		_ = g.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w: the restored guest's agent did not answer: %v%s", snapfile.ErrCorrupt, err, tail)
	}
	if !timeControlled {
		ag, err := g.Agent()
		if err == nil {
			err = ag.ClockSet(ctx, time.Now().UnixNano())
		}
		if err != nil {
			_ = g.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("re-syncing the guest clock: %w", err)
		}
	}
	// NICs the VM has now that the snapshot lacked are hot-plugged, as an
	// attach to a booted VM would.
	for _, n := range extraNICs {
		if err := g.plugNIC(ctx, n); err != nil {
			_ = g.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("plugging the NIC on bridge `%s`: %w", n.Bridge, err)
		}
	}
	g.life.spawn(spec.Profile, p.memory, p.cpus, "restore", began)
	go g.watch()
	return g, nil
}

// SetTimeControlled records whether the guest clock is under the test's
// control (clock:set, initial_time): the next snapshot says so, and a
// restore of it then leaves the clock alone.
func (g *Machine) SetTimeControlled(on bool) {
	if g.origin != nil {
		g.origin.timeControlled = on
	}
}

// writeSparse writes a raw snapshot file whose all-zero 4 KiB blocks are
// holes: untouched guest RAM then costs no disk space and no writes. It
// fsyncs the file before returning.
func writeSparse(path string, m snapfile.Manifest, members []snapfile.Member) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := &sparseWriter{f: f}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := snapfile.Write(bw, m, members...); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := w.emit(w.pending); err != nil {
		return err
	}
	if err := f.Truncate(w.off); err != nil {
		return err
	}
	return f.Sync()
}

const sparseBlock = 4096

// sparseWriter writes to f at increasing offsets, seeking over all-zero
// blocks (aligned to the file) instead of writing them.
type sparseWriter struct {
	f       *os.File
	off     int64
	pending []byte // the start of a block not yet complete
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := sparseBlock - int(w.off+int64(len(w.pending)))%sparseBlock
		if len(w.pending) == 0 && len(p) >= room {
			if err := w.emit(p[:room]); err != nil {
				return 0, err
			}
			p = p[room:]
			continue
		}
		take := min(room, len(p))
		w.pending = append(w.pending, p[:take]...)
		p = p[take:]
		if take == room {
			blk := w.pending
			w.pending = nil
			if err := w.emit(blk); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// emit writes one block (or block tail), skipping it when all zero.
func (w *sparseWriter) emit(b []byte) error {
	if !allZero(b) {
		if _, err := w.f.WriteAt(b, w.off); err != nil {
			return err
		}
	}
	w.off += int64(len(b))
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
