package guest

import (
	"slices"
	"testing"

	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// A snapshot records the PCI layout it was taken with, and one taken with
// the previous layout (boot-time NICs behind root ports, whose device list
// had no layout entry) is refused with the difference named instead of
// being loaded into the current one.
func TestSnapshotDevicesCarryThePCILayout(t *testing.T) {
	q35 := devices(&plan{machine: vmm.MachineQ35}, vmm.AccelTCG)
	want := []string{"machine=q35", "accel=tcg", "rng=virtio", "pci-layout=2"}
	if !slices.Equal(q35, want) {
		t.Errorf("q35 devices %q, want %q", q35, want)
	}
	if d := devices(&plan{}, vmm.AccelTCG); !slices.Equal(d, want) {
		t.Errorf("default machine devices %q, want %q", d, want)
	}
	if d := devices(&plan{machine: vmm.MachineMicroVM}, vmm.AccelTCG); slices.Contains(d, "pci-layout=2") {
		t.Errorf("microvm has no PCI, yet %q", d)
	}

	old := snapfile.Manifest{Devices: []string{"machine=q35", "accel=tcg", "rng=virtio"}}
	cur := snapfile.Manifest{Devices: q35}
	got := snapfile.Diff(old, cur)
	if got != "devices: snapshot [machine=q35 accel=tcg rng=virtio], target [machine=q35 accel=tcg rng=virtio pci-layout=2]" {
		t.Errorf("Diff of a layout-1 snapshot = %q", got)
	}
}
