package lab

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provium/provium/internal/netsim"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Snapshotter is implemented by machines that can save themselves into a
// single snapshot file (10-lua-api.md §6.1) and keep running.
type Snapshotter interface {
	Snapshot(ctx context.Context, path string) error
}

// GroupSnapshotter is implemented by machines that can be saved together
// with others (a lab snapshot): SnapshotPrepare on every machine, then
// SnapshotSave on each while all of them are stopped, then SnapshotFinish.
type GroupSnapshotter interface {
	Machine
	Snapshotter
	SnapshotPrepare(ctx context.Context) error
	SnapshotSave(ctx context.Context, path string) error
	SnapshotFinish(ctx context.Context) error
}

// Restorer is implemented by backends that can start a machine from a
// snapshot file instead of booting. The snapshot's recorded memory, cpus and
// devices win over spec.Opts; spec.OnExit is honoured as for Start.
type Restorer interface {
	Restore(ctx context.Context, spec BootSpec, snapshot string) (Machine, error)
}

// Snapshot saves the running (booted or paused) guest into path; the VM
// keeps its state. Quiescence (no live streams or open files) is the
// caller's check: the core does not know about Lua handles.
func (v *VM) Snapshot(ctx context.Context, path string) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if _, err := v.check(OpSnapshot); err != nil {
		return err
	}
	m := v.currentMachine()
	if m == nil {
		return fmt.Errorf(errFmtNoBackend, OpSnapshot)
	}
	s, ok := m.(Snapshotter)
	if !ok {
		return fmt.Errorf("vm:snapshot: vm `%s`: the VM backend cannot take snapshots", v.name)
	}
	if err := s.Snapshot(ctx, path); err != nil {
		return fmt.Errorf(errFmtVMOpFailed, OpSnapshot, v.name, err)
	}
	return nil
}

// Restore starts the VM from the snapshot file at path (created, shutdown
// or dead → booted). memory/cpus, when non-nil, become the staged boot
// options (the recorded size, so that a later boot matches it). A failure
// leaves the state unchanged.
func (v *VM) Restore(ctx context.Context, path string, memory *uint64, cpus *int) error {
	v.opMu.Lock()
	defer v.opMu.Unlock()
	if _, err := v.check(OpRestore); err != nil {
		return err
	}
	r, ok := v.backend.(Restorer)
	if v.backend == nil {
		return fmt.Errorf(errFmtNoBackend, OpRestore)
	}
	if !ok {
		return fmt.Errorf("vm:restore: vm `%s`: the VM backend cannot restore snapshots", v.name)
	}
	v.mu.Lock()
	if memory != nil {
		v.opts.Memory = memory
	}
	if cpus != nil {
		v.opts.CPUs = cpus
	}
	spec := BootSpec{Name: v.name, Path: v.Path(), Profile: v.profile, Opts: v.opts.Merge(BootOpts{}), DiskControl: v.diskControl}
	v.gen++
	gen := v.gen
	prev := v.state
	v.mu.Unlock()

	nicSpecs, nics, err := v.bootNICs()
	if err != nil {
		v.mu.Lock()
		v.state = prev
		v.mu.Unlock()
		return fmt.Errorf("vm:restore: vm `%s`: %w", v.name, err)
	}
	spec.NICs = nicSpecs
	spec.OnExit = func(poweroff bool) { v.exited(gen, poweroff) }
	start := time.Now()
	m, err := r.Restore(ctx, spec, path)
	if took := time.Since(start).Round(time.Millisecond); err == nil {
		defer v.observe("restored from %s in %s", path, took)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.state = prev
		return fmt.Errorf("vm:restore: vm `%s`: %w", v.name, err)
	}
	if v.gen != gen {
		v.state = Dead
		return fmt.Errorf("vm:restore: vm `%s`: %w", v.name, errors.New("guest exited during restore"))
	}
	v.machine = m
	v.state = Booted
	v.since = "restored"
	v.boots++
	v.mu.Unlock()
	err = v.netUp(ctx, "vm:restore", nicSpecs, nics)
	v.mu.Lock() // the deferred unlock
	return err
}

// LabFormat is the lab.json format this build writes and reads (30-runtime.md A12).
const LabFormat = 1

// LabIndexFile is the index of a lab snapshot directory.
const LabIndexFile = "lab.json"

// LabIndex is lab.json (30-runtime.md A12). Names are paths relative to the
// snapshotted lab (`a`, `dc1/a`); lists keep creation order.
type LabIndex struct {
	Format          int            `json:"format"`
	ProtocolVersion int            `json:"protocol_version"`
	SubLabs         []string       `json:"sub_labs"`
	VMs             []LabVMRecord  `json:"vms"`
	Bridges         []BridgeRecord `json:"bridges"`
}

// LabVMRecord is one VM of lab.json.
type LabVMRecord struct {
	Name        string         `json:"name"`
	Profile     string         `json:"profile"`
	MemoryBytes uint64         `json:"memory_bytes"`
	CPUs        int            `json:"cpus"`
	State       string         `json:"state"`
	Boot        map[string]any `json:"boot"`
	Disks       []any          `json:"disks"`
	NICs        []any          `json:"nics"`
	Snapshot    *string        `json:"snapshot"`
}

// BridgeRecord is one bridge of lab.json: everything the switch decides
// frames by, its members with their addresses and MACs, routes and uplink.
// Member names (also inside rules) are paths relative to the snapshotted
// lab.
type BridgeRecord struct {
	Name            string            `json:"name"`
	Subnet          string            `json:"subnet"`
	Addressing      string            `json:"addressing"` // "auto", "none" or "" (by the guest_os each member's profile names)
	Members         []string          `json:"members"`
	Addresses       map[string]string `json:"addresses"`
	MACs            map[string]string `json:"macs"`
	Impairment      netsim.Impairment `json:"impairment"`
	PairImpairments []PairRecord      `json:"pair_impairments"`
	Partitions      []PartitionRecord `json:"partitions"`
	Isolated        []string          `json:"isolated"`
	LinkDown        []string          `json:"link_down"`
	Uplink          bool              `json:"uplink"`
	Routes          []string          `json:"routes"`
	Seed            *uint64           `json:"seed"`
}

// PairRecord is one directional impairment of lab.json.
type PairRecord struct {
	From string `json:"from"`
	To   string `json:"to"`
	netsim.Impairment
}

// PartitionRecord is one partition of lab.json; directional: only a->b
// is dropped.
type PartitionRecord struct {
	A           string `json:"a"`
	B           string `json:"b"`
	Directional bool   `json:"directional"`
}

// NICRecord is one NIC of a VM in lab.json, in QEMU device order.
type NICRecord struct {
	Bridge  string `json:"bridge"`
	MAC     string `json:"mac"`
	Address string `json:"address"`
}

// SnapshotVM is one VM of a lab snapshot with its path relative to the
// snapshotted lab.
type SnapshotVM struct {
	Rel string
	VM  *VM
}

// TreeVMs lists the VMs of l and its sub-labs with their relative paths,
// in creation order across the whole tree: what a lab snapshot covers.
func (l *Lab) TreeVMs() []SnapshotVM {
	var out []SnapshotVM
	l.walkTree("", func(rel string, sub *Lab) {
		for _, v := range sub.VMs() {
			out = append(out, SnapshotVM{Rel: joinPath(rel, v.Name()), VM: v})
		}
	})
	slices.SortStableFunc(out, func(a, b SnapshotVM) int { return cmp.Compare(a.VM.created, b.VM.created) })
	return out
}

// inCreationOrder returns recs (one per bridge) sorted by the bridges'
// creation order.
func inCreationOrder(bridges []*Bridge, recs []BridgeRecord) []BridgeRecord {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(bridges[i].created, bridges[j].created) })
	out := make([]BridgeRecord, len(recs))
	for k, i := range order {
		out[k] = recs[i]
	}
	return out
}

// walkTree visits l and every sub-lab below it, parents first.
func (l *Lab) walkTree(rel string, visit func(rel string, sub *Lab)) {
	visit(rel, l)
	for _, s := range l.SubLabs() {
		s.walkTree(joinPath(rel, s.Name()), visit)
	}
}

// snapFileName is the VM snapshot file of a relative VM path.
func snapFileName(rel string) string {
	return strings.ReplaceAll(rel, "/", "__") + ".snap"
}

// Snapshot saves l and its sub-labs into dir: one snapshot file per booted
// or paused VM (taken in parallel) and lab.json. The caller has checked
// quiescence. memoryOf reports a snapshot file's recorded memory and cpus
// (the snapshot format belongs to the backend).
func (l *Lab) Snapshot(ctx context.Context, dir string, protocol int, sizeOf func(snapshot string) (uint64, int, error)) (LabIndex, error) {
	idx := LabIndex{Format: LabFormat, ProtocolVersion: protocol, SubLabs: []string{}, VMs: []LabVMRecord{}, Bridges: []BridgeRecord{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return idx, fmt.Errorf("lab:snapshot: %w", err)
	}
	var bridges []*Bridge
	var bridgeRecs []BridgeRecord
	l.walkTree("", func(rel string, sub *Lab) {
		if rel != "" {
			idx.SubLabs = append(idx.SubLabs, rel)
		}
		for _, b := range sub.Bridges() {
			bridges, bridgeRecs = append(bridges, b), append(bridgeRecs, b.record(rel))
		}
	})
	idx.Bridges = append(idx.Bridges, inCreationOrder(bridges, bridgeRecs)...)
	vms := l.TreeVMs()
	// Hold every VM's lifecycle lock for the whole snapshot (in one order,
	// so two snapshots cannot deadlock) and save the running ones together.
	for _, sv := range vms {
		sv.VM.opMu.Lock()
	}
	defer func() {
		for _, sv := range vms {
			sv.VM.opMu.Unlock()
		}
	}()
	recs := make([]LabVMRecord, len(vms))
	var saving []int
	for i, sv := range vms {
		v := sv.VM
		opts := v.Opts()
		boot, err := recordBootOpts(opts)
		if err != nil {
			return idx, fmt.Errorf("vm `%s`: %w", sv.Rel, err)
		}
		rec := LabVMRecord{Name: sv.Rel, Profile: v.Profile(), Boot: boot, Disks: v.diskRecords(), NICs: v.nicRecords()}
		if opts.Memory != nil {
			rec.MemoryBytes = *opts.Memory
		}
		if opts.CPUs != nil {
			rec.CPUs = *opts.CPUs
		}
		switch st := v.State(); st {
		case Booted, Paused:
			rec.State = st.String()
			file := snapFileName(sv.Rel)
			rec.Snapshot = &file
			saving = append(saving, i)
		case Created:
			rec.State = "created"
		default:
			rec.State = "shutdown"
		}
		recs[i] = rec
	}
	path := func(i int) string { return filepath.Join(dir, *recs[i].Snapshot) }
	if err := saveTogether(ctx, vms, saving, path); err != nil {
		return idx, err
	}
	if sizeOf != nil {
		for _, i := range saving {
			mem, cpus, err := sizeOf(path(i))
			if err != nil {
				return idx, fmt.Errorf("vm `%s`: %w", recs[i].Name, err)
			}
			recs[i].MemoryBytes, recs[i].CPUs = mem, cpus
		}
	}
	idx.VMs = recs
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return idx, err
	}
	if err := os.WriteFile(filepath.Join(dir, LabIndexFile), append(data, '\n'), 0o644); err != nil {
		return idx, fmt.Errorf("lab:snapshot: %w", err)
	}
	return idx, nil
}

// ReadLabIndex reads and checks dir/lab.json.
func ReadLabIndex(dir string) (LabIndex, error) {
	var idx LabIndex
	data, err := os.ReadFile(filepath.Join(dir, LabIndexFile))
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w", LabIndexFile, err)
	}
	if idx.Format != LabFormat {
		return idx, fmt.Errorf("%s: unsupported format %d", LabIndexFile, idx.Format)
	}
	return idx, nil
}

// labAt returns the sub-lab at rel below l, creating missing ones.
func (l *Lab) labAt(rel string) (*Lab, error) {
	cur := l
	if rel == "" || rel == "." {
		return cur, nil
	}
	for _, part := range strings.Split(rel, "/") {
		sub, err := cur.SubLab(part)
		if err != nil {
			return nil, err
		}
		cur = sub
	}
	return cur, nil
}

// splitRel splits `dc1/a` into `dc1` and `a`.
func splitRel(rel string) (string, string) {
	dir, base := path.Split(rel)
	return strings.TrimSuffix(dir, "/"), base
}

// Restore recreates the lab recorded in dir inside l (30-runtime.md A12):
// sub-labs and bridges are created if missing, an existing VM of a recorded
// name is shut down and restored with the recorded size, a missing one is
// created from the recorded profile; VMs restore in parallel. Objects not in
// lab.json are untouched. It returns the restored VMs in lab.json order.
func (l *Lab) Restore(ctx context.Context, dir string, idx LabIndex) ([]*VM, error) {
	for _, rel := range idx.SubLabs {
		if _, err := l.labAt(rel); err != nil {
			return nil, err
		}
	}
	for _, br := range idx.Bridges {
		d, base := splitRel(br.Name)
		at, err := l.labAt(d)
		if err != nil {
			return nil, err
		}
		opts := BridgeOpts{Seed: br.Seed, Addressing: br.Addressing}
		if br.Subnet != "" {
			if opts.Subnet, err = netip.ParsePrefix(br.Subnet); err != nil {
				return nil, fmt.Errorf("%s: bridge `%s`: %w", LabIndexFile, br.Name, err)
			}
		}
		var b *Bridge
		if local := at.local(KindBridge, base); local != nil {
			b = local.(*Bridge)
		} else if b, err = at.BridgeWithOpts(base, opts); err != nil {
			return nil, err
		}
		if err := b.restoreRecord(ctx, d, br); err != nil {
			return nil, fmt.Errorf("lab:restore: bridge `%s`: %w", br.Name, err)
		}
	}
	vms := make([]*VM, len(idx.VMs))
	staged := make([]BootOpts, len(idx.VMs))
	for i, rec := range idx.VMs {
		d, base := splitRel(rec.Name)
		at, err := l.labAt(d)
		if err != nil {
			return nil, err
		}
		opts, err := bootOptsFromRecord(rec.Boot)
		if err != nil {
			return nil, fmt.Errorf("lab:restore: vm `%s`: %w", rec.Name, err)
		}
		if rec.MemoryBytes > 0 {
			mem := rec.MemoryBytes
			opts.Memory = &mem
		}
		if rec.CPUs > 0 {
			cpus := rec.CPUs
			opts.CPUs = &cpus
		}
		staged[i] = opts
		if obj := at.local(KindVM, base); obj != nil {
			vms[i] = obj.(*VM)
		} else if vms[i], err = at.NewVM(base, rec.Profile, opts); err != nil {
			return nil, err
		}
	}
	type job struct {
		rec    LabVMRecord
		vm     *VM
		staged BootOpts
	}
	jobs := make([]job, len(vms))
	for i := range vms {
		jobs[i] = job{idx.VMs[i], vms[i], staged[i]}
	}
	// Stop what runs first, then reserve the restored VMs whole
	// (30-runtime.md B2), then restore them.
	errs := runParallel(jobs, func(j job) error {
		if j.vm.State() != Created || j.rec.Snapshot != nil {
			if err := j.vm.shutdownAs(ctx, "restored"); err != nil {
				return err
			}
		}
		// The VM gets back the staged options it had, and an unbooted one
		// its recorded state (30-runtime.md A12).
		state := Shutdown
		if j.rec.State == "created" {
			state = Created
		}
		j.vm.restoreStaged(j.staged, state)
		return nil
	})
	// VMs whose shutdown failed are not restored; their errors stay in
	// the VMs' order with the others.
	var restoring []int
	var specs []BootSpec
	for i, j := range jobs {
		if errs[i] == nil && j.rec.Snapshot != nil {
			restoring = append(restoring, i)
			specs = append(specs, j.vm.stagedSpec())
		}
	}
	ctx, release, err := l.reserve(ctx, "restoring", specs)
	if err != nil {
		return vms, errors.Join(append(errs, err)...)
	}
	defer release()
	restored := runParallel(restoring, func(i int) error {
		j := jobs[i]
		var mem *uint64
		var cpus *int
		if j.rec.MemoryBytes > 0 {
			mem = &j.rec.MemoryBytes
		}
		if j.rec.CPUs > 0 {
			cpus = &j.rec.CPUs
		}
		if err := j.vm.Restore(ctx, filepath.Join(dir, *j.rec.Snapshot), mem, cpus); err != nil {
			return err
		}
		if j.rec.State == "paused" {
			return j.vm.Pause(ctx)
		}
		return nil
	})
	for k, i := range restoring {
		errs[i] = restored[k]
	}
	return vms, errors.Join(errs...)
}

// saveTogether snapshots the VMs at indexes saving (their op locks held):
// prepare all, stop the running ones, save all, continue them, finish all.
// Machines that cannot take part are snapshotted one by one instead.
func saveTogether(ctx context.Context, vms []SnapshotVM, saving []int, path func(int) string) error {
	var group []GroupSnapshotter
	var groupIdx []int
	var singles []int
	for _, i := range saving {
		m := vms[i].VM.currentMachine()
		if m == nil {
			return fmt.Errorf(errFmtNoBackend, OpSnapshot)
		}
		if g, ok := m.(GroupSnapshotter); ok {
			group = append(group, g)
			groupIdx = append(groupIdx, i)
		} else {
			singles = append(singles, i)
		}
	}
	vmErr := func(i int, err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf(errFmtVMOpFailed, OpSnapshot, vms[i].VM.name, err)
	}
	var errs []error
	for _, i := range singles {
		s, ok := vms[i].VM.currentMachine().(Snapshotter)
		if !ok {
			errs = append(errs, fmt.Errorf("vm:snapshot: vm `%s`: the VM backend cannot take snapshots", vms[i].VM.name))
			continue
		}
		errs = append(errs, vmErr(i, s.Snapshot(ctx, path(i))))
	}
	n := make([]int, len(group))
	for k := range n {
		n[k] = k
	}
	// Prepare; a machine that failed is left out of the rest.
	prepErrs := runParallel(n, func(k int) error { return group[k].SnapshotPrepare(ctx) })
	var ready []int
	for k, err := range prepErrs {
		if err != nil {
			errs = append(errs, vmErr(groupIdx[k], err))
		} else {
			ready = append(ready, k)
		}
	}
	// Stop the running ones so every VM is saved at the same moment.
	var stopped []int
	for _, k := range ready {
		if vms[groupIdx[k]].VM.State() == Booted {
			stopped = append(stopped, k)
		}
	}
	stopErrs := runParallel(stopped, func(k int) error { return group[k].Pause(ctx) })
	errs = append(errs, stopErrs...)
	saveErrs := runParallel(ready, func(k int) error { return vmErr(groupIdx[k], group[k].SnapshotSave(ctx, path(groupIdx[k]))) })
	errs = append(errs, saveErrs...)
	resumeCtx := context.WithoutCancel(ctx)
	errs = append(errs, runParallel(stopped, func(k int) error { return group[k].Resume(resumeCtx) })...)
	errs = append(errs, runParallel(ready, func(k int) error { return vmErr(groupIdx[k], group[k].SnapshotFinish(resumeCtx)) })...)
	return errors.Join(errs...)
}
