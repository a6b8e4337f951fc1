package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func fixtureIndex(t *testing.T) *Index {
	t.Helper()
	dep, err := os.Open("testdata/6.1.0-test/modules.dep")
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	al, err := os.Open("testdata/6.1.0-test/modules.alias")
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	idx, err := ParseIndex(dep, al)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/fs/fuse/virtio-fs.ko":               "virtio_fs",
		"kernel/drivers/virtio/virtio_pci.ko.xz":    "virtio_pci",
		"kernel/drivers/char/virtio_console.ko.zst": "virtio_console",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatch(t *testing.T) {
	idx := fixtureIndex(t)
	cases := map[string][]string{
		"pci:v00001AF4d00001003sv00001AF4sd00000003bc07sc80i00": {"virtio_pci"},
		"virtio:d00000003v00001AF4":                             {"virtio_console"},
		"acpi:PNP0C0C:":                                         {"button"},
		"virtio:d0000001Av00001AF4":                             {"virtio_fs"},
		"pci:v000010ECd00008139sv*":                             nil,
	}
	for in, want := range cases {
		if got := idx.Match(in); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLoadOrderDepsFirst(t *testing.T) {
	idx := fixtureIndex(t)
	order := idx.LoadOrder([]string{"virtio_net", "virtio_console", "virtio_pci", "not_a_module", "virtio_net"})
	pos := map[string]int{}
	for i, m := range order {
		if _, dup := pos[m]; dup {
			t.Fatalf("%s loaded twice in %v", m, order)
		}
		pos[m] = i
	}
	for _, m := range []string{"virtio_net", "virtio_console", "virtio_pci"} {
		if _, ok := pos[m]; !ok {
			t.Fatalf("%s missing from %v", m, order)
		}
		for _, d := range idx.deps[m] {
			if pos[d] >= pos[m] {
				t.Errorf("%s (at %d) before its dependency %s (at %d): %v", m, pos[m], d, pos[d], order)
			}
		}
	}
	if slices.Contains(order, "not_a_module") {
		t.Fatalf("unknown module in order %v", order)
	}
	if f, _ := idx.File("virtio_ring"); f != "kernel/drivers/virtio/virtio_ring.ko.xz" {
		t.Fatalf("file of virtio_ring = %q", f)
	}
}

func TestLoadOrderCycleTerminates(t *testing.T) {
	idx, err := ParseIndex(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"), strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if got := idx.LoadOrder([]string{"a"}); len(got) != 2 {
		t.Fatalf("cycle order %v", got)
	}
}

func TestDeviceModaliasesAndMatching(t *testing.T) {
	got, err := DeviceModaliases("testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"acpi:PNP0C0C:", "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw", "pci:v00001AF4d00001003sv00001AF4sd00000003bc07sc80i00", "virtio:d00000003v00001AF4"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("modaliases %v, want %v", got, want)
	}
	idx := fixtureIndex(t)
	var wanted []string
	for _, a := range got {
		wanted = append(wanted, idx.Match(a)...)
	}
	order := idx.LoadOrder(wanted)
	wantOrder := []string{"button", "evdev", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_ring", "virtio_pci", "virtio_console"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("coldplug order %v, want %v", order, wantOrder)
	}
}

func TestColdplugWithoutModulesDir(t *testing.T) {
	loaded, err := Coldplug("testdata/sys", filepath.Join(t.TempDir(), "absent"))
	if err != nil || loaded != nil {
		t.Fatalf("built-in kernel: loaded %v err %v", loaded, err)
	}
}

// TestDeviceScanReadsOnlyNewDevices: a rescan reports the devices that
// appeared since the last one (as a driver's load makes them), not the
// ones already handled.
func TestDeviceScanReadsOnlyNewDevices(t *testing.T) {
	sys := t.TempDir()
	write := func(rel, alias string) {
		t.Helper()
		p := filepath.Join(sys, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(alias+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bus/pci/devices/0000:00:01.0/modalias", "pci:v00001AF4d00001003")
	if err := os.MkdirAll(filepath.Join(sys, "bus/pci/devices/0000:00:02.0"), 0o755); err != nil {
		t.Fatal(err) // a device without a modalias yet
	}
	scan := newDeviceScan(sys)
	first, err := scan.fresh()
	if err != nil || !reflect.DeepEqual(first, []string{"pci:v00001AF4d00001003"}) {
		t.Fatalf("first scan %v, %v", first, err)
	}
	write("bus/virtio/devices/virtio0/modalias", "virtio:d00000003v00001AF4")
	write("bus/pci/devices/0000:00:02.0/modalias", "pci:v00001AF4d00001005")
	second, err := scan.fresh()
	want := []string{"pci:v00001AF4d00001005", "virtio:d00000003v00001AF4"}
	if err != nil || !reflect.DeepEqual(second, want) {
		t.Fatalf("second scan %v, %v; want %v", second, err, want)
	}
	if third, err := scan.fresh(); err != nil || len(third) != 0 {
		t.Fatalf("third scan %v, %v; want nothing new", third, err)
	}
}
