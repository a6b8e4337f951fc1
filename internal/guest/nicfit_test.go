package guest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// want makes NIC specs from (id, bridge, MAC) triples; Listen succeeds.
func want(ids ...string) []lab.NICSpec {
	var out []lab.NICSpec
	for i := 0; i+2 < len(ids); i += 3 {
		out = append(out, lab.NICSpec{ID: ids[i], Bridge: ids[i+1], MAC: ids[i+2], Listen: func(string) error { return nil }})
	}
	return out
}

func closeAll(devs []*nicDev) {
	for _, d := range devs {
		if d.park != nil {
			d.park.close()
		}
	}
}

func TestFitNICsByBridgeThenLeftovers(t *testing.T) {
	dir := t.TempDir()
	cards := []snapfile.NIC{
		{Bridge: "lan", MAC: "02:50:00:00:00:01", Port: "hp1"},
		{Bridge: "wan", MAC: "02:50:00:01:00:01", Port: "hp3"},
	}
	// The VM is on wan (same MAC) and on other (a new bridge): wan takes
	// its own card, other the card lan left.
	q, devs, extra, err := fitNICs(dir, cards, want("net0", "other", "02:50:00:02:00:01", "net1", "wan", "02:50:00:01:00:01"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(devs)
	if len(extra) != 0 {
		t.Errorf("extra NICs %v", extra)
	}
	if len(q) != 2 || q[0].ID != "net0" || q[0].Port != "hp1" || q[0].MAC != "02:50:00:02:00:01" || q[1].ID != "net1" || q[1].Port != "hp3" {
		t.Fatalf("QEMU cards %+v", q)
	}
	if devs[0].previous != "02:50:00:00:00:01" || devs[1].previous != "" {
		t.Errorf("previous MACs %q %q, want the old card's MAC for the re-used card only", devs[0].previous, devs[1].previous)
	}
}

func TestFitNICsParksAndPlugs(t *testing.T) {
	dir := t.TempDir()
	cards := []snapfile.NIC{{Bridge: "lan", MAC: "02:50:00:00:00:01", Port: "hp0"}}
	// A vm fixture copy: on no bridge, its card is parked.
	q, devs, extra, err := fitNICs(dir, cards, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) != 0 || len(q) != 1 || q[0].ID != "park0" || q[0].MAC != "02:50:00:00:00:01" || q[0].Port != "hp0" {
		t.Fatalf("parked card %+v, extra %v", q, extra)
	}
	if devs[0].park == nil || devs[0].park.bridge != "lan" {
		t.Fatalf("card not parked: %+v", devs[0])
	}
	// QEMU's connection is held until an attach takes it.
	c, err := net.Dial("unix", filepath.Join(dir, "park0.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := devs[0].park.take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
	closeAll(devs)

	// More NICs than cards: the rest are hot-plugged after the restore.
	_, devs, extra, err = fitNICs(dir, cards, want("net0", "a", "02:50:00:05:00:01", "net1", "lan", "02:50:00:00:00:01"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(devs)
	if len(extra) != 1 || extra[0].ID != "net0" || devs[0].spec.ID != "net1" {
		t.Errorf("extra %v, card went to %q; want lan's NIC on the card and a's plugged", extra, devs[0].spec.ID)
	}
}

func TestTakeParkedPrefersTheSameBridge(t *testing.T) {
	s := &netState{devs: []*nicDev{
		{spec: lab.NICSpec{ID: "park0"}, park: &parking{bridge: "lan"}},
		{spec: lab.NICSpec{ID: "park1"}, park: &parking{bridge: "wan"}},
	}}
	if d := s.takeParked("wan"); d == nil || d.spec.ID != "park1" {
		t.Fatalf("took %+v, want wan's card", d)
	}
	if d := s.takeParked("wan"); d == nil || d.spec.ID != "park0" {
		t.Fatalf("took %+v, want the other card", d)
	}
	if d := s.takeParked("wan"); d != nil {
		t.Fatalf("took %+v from no parked card", d)
	}
}

func TestHotplugSnapshotRefusalsOffQ35(t *testing.T) {
	ns := &netState{devs: []*nicDev{{spec: lab.NICSpec{ID: "net0", Bridge: "lan"}, hot: true}}}
	if err := ns.checkSnapshot(vmm.MachineQ35); err != nil {
		t.Errorf("q35 refused: %v", err)
	}
	want := "the VM has a NIC hot-plugged on bridge `lan` on a `pc` machine, where a restore could not put it back in place (use machine = \"q35\", the default, or attach before boot)"
	if err := ns.checkSnapshot(vmm.MachinePC); err == nil || err.Error() != want {
		t.Errorf("pc: %v\nwant %s", err, want)
	}
	ds := &diskSet{list: []*disk{{id: "late", attached: true}}}
	if err := ds.checkSnapshot(vmm.MachineQ35); err != nil {
		t.Errorf("q35 refused: %v", err)
	}
	want = "disk `late` was hot-plugged into a `pc` machine, where a restore could not put it back in place (use machine = \"q35\", the default, or give it in boot opts disks)"
	if err := ds.checkSnapshot(vmm.MachinePC); err == nil || err.Error() != want {
		t.Errorf("pc: %v\nwant %s", err, want)
	}
}
