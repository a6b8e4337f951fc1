package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/provium/provium/internal/nbd"
)

// Disk error texts (10-lua-api.md §15; the first are upstream's).
const (
	errFmtDiskDetached    = "disk:%s: disk is detached"
	errFmtDiskNoImage     = "disk:%s: no backing image — disk:with_image required"
	errFmtDiskEIO         = "disk:%s: EIO (fault_inject)"
	errSuffixDuringSlow   = ", set during slow %s"
	errSuffixDuringIO     = ", set during I/O"
	errFmtDiskUnknownMode = "disk:fault_inject: unknown mode `%s` (valid: eio_read, eio_write, slow)"
	errFmtDiskNotMediated = "disk:%s: disk `%s` is not mediated (declare it in boot opts disks with mediated=true)"
	errFmtNoDisk          = "vm:disk: no disk `%s` attached to vm `%s`"
	errFmtDiskIO          = "disk:%s: disk `%s`: %v"
)

// DefaultAttachSize is attach_disk's modelled size without an image.
const DefaultAttachSize = 4 << 30

// detachTimeout bounds the wait for the guest to release a detached disk.
const detachTimeout = 60 * time.Second

// DiskImage is what a running machine serves a disk from: the raw image on
// the host and, for a mediated disk, the NBD export in front of it.
type DiskImage struct {
	Path     string
	Export   *nbd.Export // nil for a plain disk
	ReadOnly bool
}

// DiskMachine is implemented by machines that have disks (internal/guest).
type DiskMachine interface {
	// DiskImage returns the image of disk id in the running machine.
	DiskImage(id string) (DiskImage, bool)
	// DiskIDs lists the machine's disks in guest order.
	DiskIDs() []string
	// AttachDisk hot-plugs a disk into the running guest.
	AttachDisk(ctx context.Context, spec DiskSpec, ctl *nbd.Control) error
	// DetachDisk unplugs it and waits until the guest released it.
	DetachDisk(ctx context.Context, id string) error
}

// Disk is one disk of a VM as the Disk API sees it; every handle of the
// disk is this object, so they share faults and the detached flag.
type Disk struct {
	vm  *VM
	id  string
	ctl *nbd.Control

	mu        sync.Mutex
	detached  bool
	modelSize uint64
	image     string // attach_disk's `image` when not backed by the machine
	mediated  bool
}

// ID is the disk's id.
func (d *Disk) ID() string { return d.id }

// VM is the disk's VM.
func (d *Disk) VM() *VM { return d.vm }

// Control is the disk's shared fault state.
func (d *Disk) Control() *nbd.Control { return d.ctl }

// diskControl returns the fault state of disk id, shared by every boot.
func (v *VM) diskControl(id string) *nbd.Control {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.diskControlLocked(id)
}

func (v *VM) diskControlLocked(id string) *nbd.Control {
	if v.disks == nil {
		v.disks = map[string]*Disk{}
	}
	if d, ok := v.disks[id]; ok {
		return d.ctl
	}
	d := &Disk{vm: v, id: id, ctl: nbd.NewControl()}
	v.disks[id] = d
	return d.ctl
}

// Disk is `vm:disk(id)`: a disk of the boot options, the running machine
// (profile disks included) or attach_disk.
func (v *VM) Disk(id string) (*Disk, error) {
	known := false
	if m, ok := v.currentMachine().(DiskMachine); ok && m != nil {
		_, known = m.DiskImage(id)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !known {
		known = slices.ContainsFunc(v.opts.Disks, func(s DiskSpec) bool { return s.ID == id })
	}
	d, attached := v.disks[id]
	if attached && (d.image != "" || d.modelSize != 0) {
		known = true
	}
	if !known {
		return nil, fmt.Errorf(errFmtNoDisk, id, v.name)
	}
	v.diskControlLocked(id)
	return v.disks[id], nil
}

// spec is the boot option entry of the disk, if any.
func (d *Disk) spec() (DiskSpec, bool) {
	d.vm.mu.Lock()
	defer d.vm.mu.Unlock()
	i := slices.IndexFunc(d.vm.opts.Disks, func(s DiskSpec) bool { return s.ID == d.id })
	if i < 0 {
		return DiskSpec{}, false
	}
	return d.vm.opts.Disks[i], true
}

// backing is where host-side sector ops go now: the running machine's
// image, else a `path` boot disk's file or attach_disk's image.
func (d *Disk) backing() (DiskImage, bool) {
	if m, ok := d.vm.currentMachine().(DiskMachine); ok && m != nil {
		if img, ok := m.DiskImage(d.id); ok {
			return img, true
		}
	}
	if s, ok := d.spec(); ok && s.Source == DiskPath {
		return DiskImage{Path: s.Path, ReadOnly: s.ReadOnly}, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.image != "" {
		return DiskImage{Path: d.image}, true
	}
	return DiskImage{}, false
}

// IsMediated says whether the disk is served by the NBD server.
func (d *Disk) IsMediated() bool {
	if img, ok := d.backing(); ok && img.Export != nil {
		return true
	}
	if s, ok := d.spec(); ok {
		return s.Mediated
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mediated
}

// IsDetached reports detach().
func (d *Disk) IsDetached() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.detached
}

// Size is the live size of the image, else the modelled size.
func (d *Disk) Size() int64 {
	if img, ok := d.backing(); ok {
		if img.Export != nil {
			return img.Export.Size()
		}
		if st, err := os.Stat(img.Path); err == nil {
			return st.Size()
		}
	}
	if s, ok := d.spec(); ok && s.Source == DiskScratch {
		return int64(s.Size)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(d.modelSize)
}

// FaultInject activates a fault_inject mode.
func (d *Disk) FaultInject(mode string) error {
	f, ok := nbd.ParseFault(mode)
	if !ok {
		return fmt.Errorf(errFmtDiskUnknownMode, mode)
	}
	d.ctl.Inject(f)
	return nil
}

// sectorOp runs io under upstream's fault rules: detached, no image and an
// active EIO fault fail first; `slow` sleeps 50 ms and re-checks, and the
// fault is checked once more after the I/O.
func (d *Disk) sectorOp(ctx context.Context, method string, eio nbd.Fault, kind string, run func(DiskImage) error) error {
	if d.IsDetached() {
		return fmt.Errorf(errFmtDiskDetached, method)
	}
	img, ok := d.backing()
	if !ok {
		return fmt.Errorf(errFmtDiskNoImage, method)
	}
	if d.ctl.Has(eio) {
		return fmt.Errorf(errFmtDiskEIO, method)
	}
	if d.ctl.Has(nbd.FaultSlow) {
		t := time.NewTimer(nbd.SlowDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		if d.ctl.Has(eio) {
			return fmt.Errorf(errFmtDiskEIO+errSuffixDuringSlow, method, kind)
		}
	}
	if err := run(img); err != nil {
		return fmt.Errorf(errFmtDiskIO, method, d.id, err)
	}
	if d.ctl.Has(eio) {
		return fmt.Errorf(errFmtDiskEIO+errSuffixDuringIO, method)
	}
	return nil
}

// ReadSectors reads n sectors at sector (short at the end). A mediated
// disk's reads show the committed image: guest writes not yet flushed are
// not there, as after a power cut (upstream reads the backing file).
func (d *Disk) ReadSectors(ctx context.Context, sector, n uint64) ([]byte, error) {
	var out []byte
	err := d.sectorOp(ctx, "read_sectors", nbd.FaultEIORead, "read", func(img DiskImage) error {
		if sector > math.MaxInt64/nbd.SectorSize {
			out = []byte{} // far past any end: a short (empty) read
			return nil
		}
		buf := make([]byte, n*nbd.SectorSize)
		off := int64(sector * nbd.SectorSize)
		if img.Export != nil {
			k, err := img.Export.ReadCommittedAt(buf, off)
			out = buf[:k]
			return err
		}
		f, err := os.Open(img.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		k, err := f.ReadAt(buf, off)
		if err != nil && k < len(buf) && !errors.Is(err, io.EOF) {
			return err
		}
		out = buf[:k]
		return nil
	})
	return out, err
}

// WriteSectors writes data verbatim at sector; on a mediated disk the write
// is durable (it survives a power cut).
func (d *Disk) WriteSectors(ctx context.Context, sector uint64, data []byte) error {
	return d.sectorOp(ctx, "write_sectors", nbd.FaultEIOWrite, "write", func(img DiskImage) error {
		if sector > (math.MaxInt64-uint64(len(data)))/nbd.SectorSize {
			return fmt.Errorf("sector %d is out of range", sector)
		}
		off := int64(sector * nbd.SectorSize)
		if img.Export != nil {
			return img.Export.WriteDurable(data, off)
		}
		f, err := os.OpenFile(img.Path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(data, off); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// Mediated returns the disk's export (nil when the VM is not running) or
// the not-mediated error for method.
func (d *Disk) Mediated(method string) (*nbd.Export, error) {
	if !d.IsMediated() {
		return nil, fmt.Errorf(errFmtDiskNotMediated, method, d.id)
	}
	img, _ := d.backing()
	return img.Export, nil
}

// PowerCut drops the guest's unflushed writes and returns their count.
func (d *Disk) PowerCut() (int, error) {
	exp, err := d.Mediated("power_cut")
	if err != nil || exp == nil {
		return 0, err
	}
	return exp.PowerCut(), nil
}

// Detach unplugs the disk from a running guest (best effort: a disk the
// guest never had is just marked) and marks it detached; idempotent.
func (d *Disk) Detach(ctx context.Context) error {
	d.mu.Lock()
	if d.detached {
		d.mu.Unlock()
		return nil
	}
	d.detached = true
	d.mu.Unlock()
	// A detached boot disk is not attached again at the next boot.
	d.vm.mu.Lock()
	d.vm.opts.Disks = slices.DeleteFunc(slices.Clone(d.vm.opts.Disks), func(s DiskSpec) bool { return s.ID == d.id })
	d.vm.mu.Unlock()
	m, ok := d.vm.currentMachine().(DiskMachine)
	if !ok || m == nil {
		return nil
	}
	if _, plugged := m.DiskImage(d.id); !plugged {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, detachTimeout)
	defer cancel()
	if err := m.DetachDisk(ctx, d.id); err != nil {
		return fmt.Errorf("disk:detach: disk `%s` of vm `%s`: %v", d.id, d.vm.name, err)
	}
	return nil
}

// Attach disk option error texts.
const (
	errFmtAttachUnknownKey = "vm:attach_disk: unknown option `%s` (known: id, size, image, path, scratch, template, readonly, mediated)"
	errFmtAttachField      = "vm:attach_disk: %s must be %s, got %s"
	errAttachSources       = "vm:attach_disk: at most one of image, path, scratch, template"
	errFmtAttachNoImage    = "vm:attach_disk: image `%s` does not exist: %v"
	errFmtAttachDup        = "vm:attach_disk: vm `%s` already has a disk `%s`"
)

// AttachOpts are vm:attach_disk's options: upstream's id, size and image,
// plus the boot disk keys.
type AttachOpts struct {
	ID   string
	Size uint64    // modelled size without an image
	Spec *DiskSpec // nil: a modelled disk without an image
}

// ParseAttachOpts reads vm:attach_disk's table (nil for none).
func ParseAttachOpts(vmName string, t map[string]any) (AttachOpts, error) {
	o := AttachOpts{ID: "attached-" + vmName, Size: DefaultAttachSize}
	for _, k := range sortedKeys(t) {
		switch k {
		case "id", "size", "image", "path", "scratch", "template", "readonly", "mediated":
		default:
			return o, fmt.Errorf(errFmtAttachUnknownKey, k)
		}
	}
	if v, ok := t["id"]; ok && v != nil {
		s, ok := v.(string)
		if !ok || s == "" {
			return o, fmt.Errorf(errFmtAttachField, "id", "a non-empty string", luaValueString(v))
		}
		o.ID = s
	}
	if v, ok := t["size"]; ok && v != nil {
		n, err := parseSizeValue("vm:attach_disk: size", v)
		if err != nil {
			return o, err
		}
		o.Size = n
	}
	spec := DiskSpec{ID: o.ID}
	sources := 0
	for _, k := range []string{"image", "path", "template"} {
		v, ok := t[k]
		if !ok || v == nil {
			continue
		}
		sources++
		s, ok := v.(string)
		if !ok || s == "" {
			return o, fmt.Errorf(errFmtAttachField, k, "a non-empty string", luaValueString(v))
		}
		if _, err := os.Stat(s); err != nil {
			return o, fmt.Errorf(errFmtAttachNoImage, s, unwrapPathErr(err))
		}
		spec.Source, spec.Path = DiskPath, s
		if k == "template" {
			spec.Source = DiskTemplate
		}
	}
	if v, ok := t["scratch"]; ok && v != nil {
		sources++
		n, err := parseSizeValue("vm:attach_disk: scratch", v)
		if err != nil {
			return o, err
		}
		spec.Source, spec.Size = DiskScratch, n
	}
	if sources > 1 {
		return o, errors.New(errAttachSources)
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{"readonly", &spec.ReadOnly}, {"mediated", &spec.Mediated}} {
		if v, ok := t[f.key]; ok && v != nil {
			b, ok := v.(bool)
			if !ok {
				return o, fmt.Errorf(errFmtAttachField, f.key, "a boolean", luaValueString(v))
			}
			*f.dst = b
		}
	}
	if sources == 1 {
		o.Spec = &spec
	} else if spec.ReadOnly || spec.Mediated {
		return o, fmt.Errorf(errFmtAttachField, "image", "given with readonly or mediated", "nil")
	}
	return o, nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// AttachDisk is vm:attach_disk: a disk with an image is hot-plugged into a
// booted VM, or staged to be attached at the next boot; without one it is
// a modelled disk (size only, sector ops need an image).
func (v *VM) AttachDisk(ctx context.Context, o AttachOpts) (*Disk, error) {
	if _, err := v.Disk(o.ID); err == nil {
		return nil, fmt.Errorf(errFmtAttachDup, v.name, o.ID)
	}
	ctl := v.diskControl(o.ID)
	v.mu.Lock()
	d := v.disks[o.ID]
	v.mu.Unlock()
	d.mu.Lock()
	d.modelSize, d.detached = o.Size, false
	if o.Spec != nil {
		d.mediated = o.Spec.Mediated
		if o.Spec.Source == DiskPath {
			d.image = o.Spec.Path
		}
	}
	d.mu.Unlock()
	if o.Spec == nil {
		return d, nil
	}
	if m, ok := v.currentMachine().(DiskMachine); ok && m != nil && v.State() == Booted {
		if err := m.AttachDisk(ctx, *o.Spec, ctl); err != nil {
			return nil, fmt.Errorf("vm:attach_disk: vm `%s`: attaching disk `%s`: %v", v.name, o.ID, err)
		}
		return d, nil
	}
	v.mu.Lock()
	v.opts.Disks = mergeDisks(v.opts.Disks, []DiskSpec{*o.Spec})
	v.mu.Unlock()
	return d, nil
}

// DiskRecord is a disk in lab.json (30-runtime.md A12); its data lives in
// the VM's snapshot file.
type DiskRecord struct {
	Name      string   `json:"name"`
	SizeBytes int64    `json:"size_bytes"`
	Format    string   `json:"format"`
	Mediated  bool     `json:"mediated"`
	ReadOnly  bool     `json:"read_only"`
	Faults    []string `json:"faults"`
}

// diskRecords describes the running machine's disks, in guest order.
func (v *VM) diskRecords() []any {
	out := []any{}
	m, ok := v.currentMachine().(DiskMachine)
	if !ok || m == nil {
		return out
	}
	for _, id := range m.DiskIDs() {
		img, ok := m.DiskImage(id)
		if !ok {
			continue
		}
		r := DiskRecord{Name: id, Format: "raw", Mediated: img.Export != nil, ReadOnly: img.ReadOnly, Faults: v.diskControl(id).Faults()}
		if img.Export != nil {
			r.SizeBytes = img.Export.Size()
		} else if st, err := os.Stat(img.Path); err == nil {
			r.SizeBytes = st.Size()
		}
		out = append(out, r)
	}
	return out
}
