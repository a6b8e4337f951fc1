package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAttachOpts(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, make([]byte, 4096), 0o600)
	o, err := ParseAttachOpts("v", nil)
	if err != nil || o.ID != "attached-v" || o.Size != DefaultAttachSize || o.Spec != nil {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	o, err = ParseAttachOpts("v", map[string]any{"id": "d", "image": img, "mediated": true})
	if err != nil || o.Spec == nil || o.Spec.Source != DiskPath || o.Spec.Path != img || !o.Spec.Mediated {
		t.Fatalf("image: %+v %v", o.Spec, err)
	}
	o, err = ParseAttachOpts("v", map[string]any{"scratch": "1M"})
	if err != nil || o.Spec == nil || o.Spec.Source != DiskScratch || o.Spec.Size != 1<<20 {
		t.Fatalf("scratch: %+v %v", o.Spec, err)
	}
	for _, c := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"bogus": 1}, "vm:attach_disk: unknown option `bogus` (known: id, size, image, path, scratch, template, readonly, mediated)"},
		{map[string]any{"image": "/nonexistent/x"}, "vm:attach_disk: image `/nonexistent/x` does not exist: no such file or directory"},
		{map[string]any{"image": img, "scratch": "1M"}, errAttachSources},
		{map[string]any{"id": ""}, `vm:attach_disk: id must be a non-empty string, got ""`},
		{map[string]any{"mediated": true}, "vm:attach_disk: image must be given with readonly or mediated, got nil"},
	} {
		if _, err := ParseAttachOpts("v", c.in); err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %q", c.in, err, c.want)
		}
	}
}

func TestDiskHostOpsWithoutAMachine(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, make([]byte, 2048), 0o600)
	l := NewRoot(Env{Profiles: StaticProfiles{"p"}})
	vm, err := l.NewVM("v", "p", BootOpts{Disks: []DiskSpec{{ID: "p", Source: DiskPath, Path: img}, {ID: "s", Source: DiskScratch, Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := vm.Disk("p")
	if err != nil {
		t.Fatal(err)
	}
	// A `path` disk is its file, booted or not.
	if err := p.WriteSectors(ctx, 1, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	b, err := p.ReadSectors(ctx, 1, 8)
	if err != nil || len(b) != 1536 || string(b[:3]) != "abc" {
		t.Fatalf("read %d bytes %q, %v", len(b), b[:3], err)
	}
	// A scratch disk has no image until the VM boots.
	s, _ := vm.Disk("s")
	if s.Size() != 1<<20 {
		t.Fatalf("scratch size %d", s.Size())
	}
	if _, err := s.ReadSectors(ctx, 0, 1); err == nil || err.Error() != "disk:read_sectors: no backing image — disk:with_image required" {
		t.Fatalf("got %v", err)
	}
	// Faults are shared by every handle of a disk.
	p2, _ := vm.Disk("p")
	p2.FaultInject("eio_write")
	if err := p.WriteSectors(ctx, 0, []byte("x")); err == nil || err.Error() != "disk:write_sectors: EIO (fault_inject)" {
		t.Fatalf("got %v", err)
	}
	if err := p.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.ReadSectors(ctx, 0, 1); err == nil || err.Error() != "disk:read_sectors: disk is detached" {
		t.Fatalf("got %v", err)
	}
	if _, err := vm.Disk("gone"); err == nil || !strings.Contains(err.Error(), "vm:disk: no disk `gone` attached to vm `v`") {
		t.Fatalf("got %v", err)
	}
	if _, err := s.PowerCut(); err == nil || err.Error() != "disk:power_cut: disk `s` is not mediated (declare it in boot opts disks with mediated=true)" {
		t.Fatalf("got %v", err)
	}
}

func TestDiskSectorsFarPastTheEnd(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, make([]byte, 1024), 0o600)
	l := NewRoot(Env{Profiles: StaticProfiles{"p"}})
	vm, _ := l.NewVM("v", "p", BootOpts{Disks: []DiskSpec{{ID: "p", Source: DiskPath, Path: img}}})
	d, err := vm.Disk("p")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []uint64{2, 1 << 60, 1<<64 - 1} {
		if b, err := d.ReadSectors(ctx, s, 1); err != nil || len(b) != 0 {
			t.Fatalf("sector %d: %d bytes, %v", s, len(b), err)
		}
	}
	if err := d.WriteSectors(ctx, 1<<64-1, []byte("x")); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("got %v", err)
	}
}
