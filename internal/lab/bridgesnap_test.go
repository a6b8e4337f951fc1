package lab

import (
	"context"
	"slices"
	"testing"
)

// A bridge's whole state goes into lab.json and comes back, into a fresh
// lab and into one whose bridge has drifted (reset_between_tests).
func TestBridgeStateRoundTripsThroughLabJSON(t *testing.T) {
	ctx := context.Background()
	seed := uint64(99)
	root := NewRoot(Env{Profiles: StaticProfiles{"linux"}})
	lan, err := root.BridgeWithOpts("lan", BridgeOpts{Seed: &seed, Addressing: AddressingNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := lan.Attach(ctx, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(lan.Partition("a", "b"))
	must(lan.PartitionDirectional("b", "c"))
	must(lan.SetIsolated("isolate", "c", true))
	must(lan.SetImpairment("add_latency", Latency, 7))
	must(lan.SetPairImpairment("directional_drop_rate", "a", "c", Drop, 30))
	lan.Switch().SetLink("b", false)
	lan.Route([]string{"wan"})
	macs := map[string]string{}
	for _, n := range lan.NICs() {
		macs[n.VMName()] = n.MAC()
	}

	dir := t.TempDir()
	idx, err := root.Snapshot(ctx, dir, 1, nil)
	must(err)
	rec := idx.Bridges[0]
	if rec.Seed == nil || *rec.Seed != 99 || rec.Addressing != "none" || len(rec.Partitions) != 2 || rec.Impairment.LatencyMs != 7 ||
		len(rec.PairImpairments) != 1 || !slices.Equal(rec.Isolated, []string{"c"}) || !slices.Equal(rec.LinkDown, []string{"b"}) ||
		!slices.Equal(rec.Routes, []string{"wan"}) || rec.Addresses["b"] != "10.64.0.3" {
		t.Fatalf("recorded %+v", rec)
	}

	check := func(where string, b *Bridge) {
		t.Helper()
		on := func(x, y string) bool { p, _ := b.IsPartitioned(x, y); return p }
		iso, _ := b.IsIsolated("c")
		pi, _ := b.PairImpairment("a", "c")
		if !on("a", "b") || !on("b", "a") || !on("b", "c") || on("c", "b") || !iso || b.Impairment().LatencyMs != 7 ||
			pi.DropPct != 30 || b.Switch().LinkUp("b") || !slices.Equal(b.Routes(), []string{"wan"}) || b.Seed() != 99 {
			t.Errorf("%s: state not restored: %+v", where, b.Switch().State())
		}
		if !slices.Equal(b.Members(), []string{"a", "b", "c"}) {
			t.Errorf("%s: members %v", where, b.Members())
		}
		for _, n := range b.NICs() {
			if n.MAC() != macs[n.VMName()] {
				t.Errorf("%s: %s's MAC %s, recorded %s", where, n.VMName(), n.MAC(), macs[n.VMName()])
			}
		}
	}

	// Into a fresh lab.
	fresh := NewRoot(Env{Profiles: StaticProfiles{"linux"}})
	read, err := ReadLabIndex(dir)
	must(err)
	_, err = fresh.Restore(ctx, dir, read)
	must(err)
	fb, _ := fresh.Bridge("lan")
	check("fresh lab", fb)

	// Into the drifted original.
	lan.Reset()
	lan.Switch().SetLink("b", true)
	must(lan.Attach(ctx, "d"))
	_, err = root.Restore(ctx, dir, read)
	must(err)
	check("drifted lab", lan)
}
