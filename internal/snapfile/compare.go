package snapfile

import (
	"fmt"
	"slices"
)

// ProfileMismatch is the contract text (10-lua-api.md §6.1) for restoring a
// snapshot into a VM of another profile.
func ProfileMismatch(snapProfile, vmName, vmProfile string) string {
	return fmt.Sprintf("vm:restore: snapshot was taken from profile `%s`, vm `%s` uses profile `%s`", snapProfile, vmName, vmProfile)
}

// CheckProfile refuses a restore into a VM of a different profile.
func CheckProfile(snap Manifest, vmName, vmProfile string) error {
	if snap.Profile != vmProfile {
		return fmt.Errorf("%s", ProfileMismatch(snap.Profile, vmName, vmProfile))
	}
	return nil
}

// Diff compares the parts of two manifests that must match for a migration
// stream taken from one to load into a QEMU built from the other (40 §5),
// and names the first difference; "" when compatible. Members, NICs and
// the time-controlled flag are not compared: the restore recreates the
// snapshot's NICs whatever bridges the VM is on now (matching them up,
// parking the rest), and rewrites NIC identities and the clock anyway.
func Diff(snap, target Manifest) string {
	switch {
	case snap.Profile != target.Profile:
		return fmt.Sprintf("profile: snapshot `%s`, target `%s`", snap.Profile, target.Profile)
	case snap.MemoryBytes != target.MemoryBytes:
		return fmt.Sprintf("memory: snapshot %d bytes, target %d bytes", snap.MemoryBytes, target.MemoryBytes)
	case snap.CPUs != target.CPUs:
		return fmt.Sprintf("cpus: snapshot %d, target %d", snap.CPUs, target.CPUs)
	case snap.Kernel.SHA256 != target.Kernel.SHA256:
		return fmt.Sprintf("kernel: snapshot %s, target %s", idText(snap.Kernel), idText(target.Kernel))
	case snap.Initrd.SHA256 != target.Initrd.SHA256:
		return fmt.Sprintf("initrd: snapshot %s, target %s", idText(snap.Initrd), idText(target.Initrd))
	case snap.HasRAM != target.HasRAM:
		return fmt.Sprintf("RAM layout: snapshot fast-path=%t, target fast-path=%t", snap.HasRAM, target.HasRAM)
	case len(snap.Disks) != len(target.Disks):
		return fmt.Sprintf("disks: snapshot has %d, target %d", len(snap.Disks), len(target.Disks))
	}
	for i := range snap.Disks {
		a, b := snap.Disks[i], target.Disks[i]
		if a.Name != b.Name || a.SizeBytes != b.SizeBytes || a.Format != b.Format || a.Mediated != b.Mediated || a.ReadOnly != b.ReadOnly {
			return fmt.Sprintf("disk %d: snapshot `%s` (%d bytes, %s), target `%s` (%d bytes, %s)",
				i, a.Name, a.SizeBytes, a.Format, b.Name, b.SizeBytes, b.Format)
		}
	}
	if !slices.Equal(snap.Devices, target.Devices) {
		return fmt.Sprintf("devices: snapshot %v, target %v", snap.Devices, target.Devices)
	}
	return ""
}

func idText(id Identity) string {
	if id.SHA256 == "" {
		return "none"
	}
	if id.Path == "" {
		return "sha256:" + id.SHA256
	}
	return fmt.Sprintf("%s (sha256:%s)", id.Path, id.SHA256)
}
