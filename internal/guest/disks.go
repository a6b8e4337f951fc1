package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/nbd"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/sparse"
	"github.com/provium/provium/internal/vmm"
)

// disk is one disk of a running machine.
type disk struct {
	id       string // the user's id: virtio serial, vm:disk(id)
	node     string // QEMU node name
	spec     lab.DiskSpec
	image    string // host file QEMU or the export uses
	owned    bool   // the image belongs to the machine (scratch, template, profile copy): snapshots carry it
	export   *nbd.Export
	attached bool // hot-plugged
}

// diskSet is a machine's disks in guest order.
type diskSet struct {
	mu    sync.Mutex
	dir   string // the machine's scratch dir, where owned images live
	list  []*disk
	next  int // node name counter
	close sync.Once
}

// bootDisks lists a boot's disks in guest order: the profile's, then the
// boot option's (10-lua-api.md §5.2). A writable profile disk is used
// through a per-VM copy, like a template (20-cli-config.md §7.3).
func bootDisks(prof *config.Profile, opts []lab.DiskSpec) ([]lab.DiskSpec, error) {
	var out []lab.DiskSpec
	seen := map[string]bool{}
	for _, d := range prof.Disks {
		src := lab.DiskTemplate
		if d.ReadOnly {
			src = lab.DiskPath
		}
		out = append(out, lab.DiskSpec{ID: d.ID, Source: src, Path: d.Path, ReadOnly: d.ReadOnly})
		seen[d.ID] = true
	}
	for i, d := range opts {
		if seen[d.ID] {
			return nil, fmt.Errorf("boot_opts.disks[%d]: duplicate disk id `%s` (the profile declares it)", i+1, d.ID)
		}
		seen[d.ID] = true
		out = append(out, d)
	}
	return out, nil
}

// prepare makes the image of spec in the set's dir and, for a mediated
// disk, starts its NBD export; it returns the QEMU disk.
func (s *diskSet) prepare(spec lab.DiskSpec, ctl *nbd.Control) (*disk, vmm.Disk, error) {
	s.mu.Lock()
	n := s.next
	s.next++
	s.mu.Unlock()
	d := &disk{id: spec.ID, node: fmt.Sprintf("disk%d", n), spec: spec}
	switch spec.Source {
	case lab.DiskPath:
		if _, err := os.Stat(spec.Path); err != nil {
			return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: image `%s`: %v", spec.ID, spec.Path, unwrapPath(err))
		}
		d.image = spec.Path
	case lab.DiskScratch:
		d.image, d.owned = filepath.Join(s.dir, d.node+".img"), true
		if err := sparse.Create(d.image, int64(spec.Size)); err != nil {
			return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: creating scratch image: %w", spec.ID, err)
		}
	case lab.DiskTemplate:
		d.image, d.owned = filepath.Join(s.dir, d.node+".img"), true
		if err := sparse.Copy(spec.Path, d.image); err != nil {
			return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: copying template `%s`: %v", spec.ID, spec.Path, unwrapPath(err))
		}
	default:
		return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: no image source", spec.ID)
	}
	vd := vmm.Disk{ID: d.node, Path: d.image, ReadOnly: spec.ReadOnly, Serial: spec.ID}
	if spec.Mediated {
		if ctl == nil {
			ctl = nbd.NewControl()
		}
		exp, err := nbd.Open(nbd.Options{Name: spec.ID, Path: d.image, ReadOnly: spec.ReadOnly, Control: ctl, SpillDir: s.dir})
		if err != nil {
			return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: %w", spec.ID, err)
		}
		sock := filepath.Join(s.dir, d.node+".nbd")
		if err := exp.Listen(sock); err != nil {
			exp.Close()
			return nil, vmm.Disk{}, fmt.Errorf("disk `%s`: %w", spec.ID, err)
		}
		d.export = exp
		vd.Path, vd.NBDSocket = "", sock
	}
	return d, vd, nil
}

// prepareAll prepares the boot disks; on error the ones made are closed.
func (s *diskSet) prepareAll(specs []lab.DiskSpec, ctlOf func(string) *nbd.Control) ([]vmm.Disk, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	var vds []vmm.Disk
	for _, spec := range specs {
		var ctl *nbd.Control
		if ctlOf != nil {
			ctl = ctlOf(spec.ID)
		}
		d, vd, err := s.prepare(spec, ctl)
		if err != nil {
			s.closeAll()
			return nil, err
		}
		s.mu.Lock()
		s.list = append(s.list, d)
		s.mu.Unlock()
		vds = append(vds, vd)
	}
	return vds, nil
}

// closeAll stops the NBD exports (after QEMU has gone).
func (s *diskSet) closeAll() {
	s.close.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range s.list {
			if d.export != nil {
				d.export.Close()
			}
		}
	})
}

func (s *diskSet) find(id string) *disk {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.list, func(d *disk) bool { return d.id == id })
	if i < 0 {
		return nil
	}
	return s.list[i]
}

// DiskImage implements lab.DiskMachine.
func (g *Machine) DiskImage(id string) (lab.DiskImage, bool) {
	d := g.disks.find(id)
	if d == nil {
		return lab.DiskImage{}, false
	}
	return lab.DiskImage{Path: d.image, Export: d.export, ReadOnly: d.spec.ReadOnly}, true
}

// DiskIDs implements lab.DiskMachine.
func (g *Machine) DiskIDs() []string {
	g.disks.mu.Lock()
	defer g.disks.mu.Unlock()
	ids := make([]string, len(g.disks.list))
	for i, d := range g.disks.list {
		ids[i] = d.id
	}
	return ids
}

// AttachDisk implements lab.DiskMachine: the image is made (or checked) as
// at boot and hot-plugged over QMP.
func (g *Machine) AttachDisk(ctx context.Context, spec lab.DiskSpec, ctl *nbd.Control) error {
	if g.disks.find(spec.ID) != nil {
		return fmt.Errorf("disk `%s` is already attached", spec.ID)
	}
	g.loadBlockDriver(ctx)
	d, vd, err := g.disks.prepare(spec, ctl)
	if err != nil {
		return err
	}
	if err := g.vm.AttachDisk(ctx, vd); err != nil {
		if d.export != nil {
			d.export.Close()
		}
		if d.owned {
			os.Remove(d.image)
		}
		return err
	}
	d.attached = true
	g.disks.mu.Lock()
	g.disks.list = append(g.disks.list, d)
	g.disks.mu.Unlock()
	return nil
}

// loadBlockDriver makes sure the guest can bind a hot-plugged disk: the
// agent loads modules only for the devices present at boot, so a guest
// booted without disks has no virtio_blk yet. It asks the guest's
// modprobe, best effort (a guest without one, or with the driver built
// in, is left alone).
func (g *Machine) loadBlockDriver(ctx context.Context) {
	ag, err := g.Agent()
	if err != nil {
		return
	}
	if _, err := ag.Stat(ctx, "/sys/module/virtio_blk"); err == nil {
		return
	}
	_, _ = ag.Exec(ctx, proto.ExecReq{Cmd: "modprobe", Args: []string{"virtio_blk"}, TimeoutMs: 30000})
}

// DetachDisk implements lab.DiskMachine: device_del, wait for the guest to
// release the device, then the backend goes.
func (g *Machine) DetachDisk(ctx context.Context, id string) error {
	d := g.disks.find(id)
	if d == nil {
		return fmt.Errorf("no disk `%s` attached", id)
	}
	if err := g.vm.Detach(ctx, d.node); err != nil {
		return err
	}
	g.disks.mu.Lock()
	g.disks.list = slices.DeleteFunc(g.disks.list, func(x *disk) bool { return x == d })
	g.disks.mu.Unlock()
	var errs []error
	if d.export != nil {
		errs = append(errs, d.export.Close())
	}
	if d.owned {
		errs = append(errs, os.Remove(d.image))
	}
	return errors.Join(errs...)
}

// errFmtHotplugSnapshot refuses snapshots of a machine whose hot-plugged
// disk sits where only QEMU knows: off q35 there are no root ports to pin
// it to, so a restore could not put it back where the guest saw it.
const errFmtHotplugSnapshot = "disk `%s` was hot-plugged into a `%s` machine, where a restore could not put it back in place (use machine = \"q35\", the default, or give it in boot opts disks)"

// checkSnapshot refuses what a snapshot cannot carry: hot-plugged disks
// off q35.
func (s *diskSet) checkSnapshot(machine vmm.MachineType) error {
	if machine == vmm.MachineQ35 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.list {
		if d.attached {
			return fmt.Errorf(errFmtHotplugSnapshot, d.id, machine)
		}
	}
	return nil
}

// snapshot copies the owned images into dir — sparse or reflinked; a
// mediated disk's copy is the guest's view, held writes included — and
// describes every disk for the manifest, with the root port it sits on
// (ports, by QEMU node). Hot-plugged disks travel like boot-time ones. It
// runs while the guest is stopped.
func (s *diskSet) snapshot(dir string, ports map[string]string) ([]snapfile.Disk, []snapfile.Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	disks := []snapfile.Disk{}
	var members []snapfile.Member
	for i, d := range s.list {
		sd := snapfile.Disk{Name: d.id, Format: "raw", Mediated: d.export != nil, ReadOnly: d.spec.ReadOnly, Port: ports[d.node]}
		if !d.owned {
			sd.Path = d.image
			if st, err := os.Stat(d.image); err == nil {
				sd.SizeBytes = uint64(st.Size())
			}
			disks = append(disks, sd)
			continue
		}
		sd.Member = fmt.Sprintf("disk%d", i)
		dst := filepath.Join(dir, sd.Member)
		var err error
		if d.export != nil {
			err = d.export.SaveView(dst)
		} else {
			err = sparse.Copy(d.image, dst)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("copying disk `%s`: %w", d.id, err)
		}
		st, err := os.Stat(dst)
		if err != nil {
			return nil, nil, err
		}
		sd.SizeBytes = uint64(st.Size())
		disks = append(disks, sd)
		members = append(members, snapfile.Member{Name: sd.Member, Path: dst})
	}
	return disks, members, nil
}

// restore recreates a snapshot's disks: each owned image becomes a private
// copy (reflink or sparse) of the snapshot's, so the snapshot never
// changes; `path` disks are used in place again.
func (s *diskSet) restore(disks []snapfile.Disk, members map[string]string, ctlOf func(string) *nbd.Control) ([]vmm.Disk, error) {
	specs := make([]lab.DiskSpec, len(disks))
	for i, sd := range disks {
		spec := lab.DiskSpec{ID: sd.Name, Source: lab.DiskPath, Path: sd.Path, ReadOnly: sd.ReadOnly, Mediated: sd.Mediated}
		if sd.Member != "" {
			src := members[sd.Member]
			if src == "" {
				return nil, fmt.Errorf("%w: disk `%s`: no member %q", snapfile.ErrCorrupt, sd.Name, sd.Member)
			}
			spec.Source, spec.Path = lab.DiskTemplate, src
		}
		specs[i] = spec
	}
	vds, err := s.prepareAll(specs, ctlOf)
	if err != nil {
		return nil, err
	}
	// Each disk goes back on its root port (hot-plugged ones included).
	for i := range vds {
		vds[i].Port = disks[i].Port
	}
	// The copies are the machine's own now, like a template's.
	return vds, nil
}
