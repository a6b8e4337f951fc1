package lab

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

func TestParseBridgeOpts(t *testing.T) {
	o, err := ParseBridgeOpts(map[string]any{"subnet": "192.168.7.9/30", "seed": int64(-1)})
	if err != nil || o.Subnet.String() != "192.168.7.8/30" || *o.Seed != ^uint64(0) {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := ParseBridgeOpts(map[string]any{}); err != nil || o.Subnet.IsValid() || o.Seed != nil {
		t.Errorf("empty opts: %+v %v", o, err)
	}
	cases := []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"subnet": "10.0.0.0/31"}, "lab:bridge: opts.subnet `10.0.0.0/31`: prefix must be /30 or shorter (room for .1 and a VM)"},
		{map[string]any{"subnet": "fd00::/64"}, "lab:bridge: opts.subnet `fd00::/64` is not an IPv4 CIDR such as 10.0.0.0/24"},
		{map[string]any{"subnet": "10.0.0.0"}, "lab:bridge: opts.subnet `10.0.0.0` is not an IPv4 CIDR such as 10.0.0.0/24"},
		{map[string]any{"subnet": int64(24)}, "lab:bridge: opts.subnet: expected string, got number"},
		{map[string]any{"seed": "x"}, "lab:bridge: opts.seed: expected integer, got string"},
		{map[string]any{"mtu": int64(1500)}, "lab:bridge: opts: unknown key `mtu`"},
	}
	for _, c := range cases {
		_, err := ParseBridgeOpts(c.in)
		wantErr(t, err, c.want)
	}
}

func TestBridgeAttachDetach(t *testing.T) {
	root := newTestRoot()
	lan, _ := root.Bridge("lan")
	a := mustVM(t, root, "a")
	b := mustVM(t, root, "b")
	if err := lan.Attach(bg, b, "a", a, b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lan.Members(), []string{"b", "a"}) {
		t.Errorf("members = %v (re-attach must be a no-op)", lan.Members())
	}
	if vms := lan.MemberVMs(); len(vms) != 2 || vms[0] != b || vms[1] != a {
		t.Errorf("a name must resolve to the VM: %v", vms)
	}
	if err := lan.Detach(bg, "b"); err != nil || !slices.Equal(lan.Members(), []string{"a"}) {
		t.Errorf("detach by name: %v %v", err, lan.Members())
	}
	if err := lan.Detach(bg, b); err != nil || !slices.Equal(lan.Members(), []string{"a"}) {
		t.Errorf("detaching a non-member must be a no-op: %v %v", err, lan.Members())
	}
	if err := lan.Detach(bg, a); err != nil || len(lan.Members()) != 0 {
		t.Errorf("detach by VM: %v %v", err, lan.Members())
	}
}

func TestBridgeAttachValidatesBeforeCommit(t *testing.T) {
	root := newTestRoot()
	lan, _ := root.Bridge("lan")
	a := mustVM(t, root, "a")
	wantErr(t, lan.Attach(bg, a, int64(3)), "bridge expected a VM userdata or string, got number")
	wantErr(t, lan.Attach(bg, "ok", lan), "bridge expected a VM userdata or string, got userdata")
	wantErr(t, lan.Attach(bg, "b.c"), "bridge:attach: invalid vm name `b.c` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)")
	other, _ := root.SubLab("other")
	twin := mustVM(t, other, "a")
	wantErr(t, lan.Attach(bg, a, twin), "bridge:attach: a different vm named `a` is already attached to bridge `lan`")
	if len(lan.Members()) != 0 {
		t.Errorf("failed attach committed %v", lan.Members())
	}
	wantErr(t, lan.Detach(bg, 2.5), "bridge expected a VM userdata or string, got number")
}

func TestBridgeGraphOnlyNamesResolveLater(t *testing.T) {
	root := newTestRoot()
	lan, _ := root.Bridge("lan")
	if err := lan.Attach(bg, "later"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lan.Members(), []string{"later"}) || len(lan.MemberVMs()) != 0 {
		t.Fatalf("graph-only member: %v %v", lan.Members(), lan.MemberVMs())
	}
	v := mustVM(t, root, "later")
	if vms := lan.MemberVMs(); len(vms) != 1 || vms[0] != v {
		t.Errorf("graph-only name did not resolve: %v", vms)
	}
	// Attaching the VM object now is a re-attach.
	if err := lan.Attach(bg, v); err != nil || len(lan.Members()) != 1 {
		t.Errorf("re-attach: %v %v", err, lan.Members())
	}
}

func TestBridgeResolvesThroughItsLabChain(t *testing.T) {
	root := newTestRoot()
	shared := mustVM(t, root, "shared")
	ts := root.NewTestScope()
	probe := mustVM(t, ts, "probe")
	rootLan, _ := root.Bridge("lan")
	tsLan, _ := ts.Bridge("tlan")
	if err := tsLan.Attach(bg, "shared", "probe"); err != nil {
		t.Fatal(err)
	}
	if vms := tsLan.MemberVMs(); len(vms) != 2 || vms[0] != shared || vms[1] != probe {
		t.Errorf("test-scope bridge must resolve parent and local names: %v", vms)
	}
	// The root bridge resolves through the root only: a test VM's name stays graph-only.
	if err := rootLan.Attach(bg, "probe"); err != nil {
		t.Fatal(err)
	}
	if len(rootLan.MemberVMs()) != 0 {
		t.Error("root bridge must not see test-scope VMs by name")
	}
	// A VM object attaches from anywhere.
	if err := rootLan.Attach(bg, probe); err != nil || len(rootLan.MemberVMs()) != 1 {
		t.Errorf("attach by object: %v", err)
	}
}

func TestBridgeClose(t *testing.T) {
	root := newTestRoot()
	lan, _ := root.Bridge("lan")
	lan.Attach(bg, "a", "b")
	if err := lan.Close(context.Background()); err != nil || len(lan.Members()) != 0 {
		t.Fatalf("close: %v %v", err, lan.Members())
	}
	if err := lan.Close(context.Background()); err != nil {
		t.Errorf("second close: %v", err)
	}
	wantErr(t, lan.Attach(bg, "a"), "bridge:attach: bridge `lan` is closed")
}

// A bridge without an addressing opt configures only members whose
// profile names guest_os "linux"; profiles that name none (as upstream's
// do) or name another OS get raw links; the opt overrides either way.
func TestBridgeDefaultAddressingFollowsTheNamedGuestOS(t *testing.T) {
	named := map[string]string{"explicit-linux": "linux", "peios": "peios", "absent": ""}
	root := NewRoot(Env{
		Profiles: StaticProfiles{"explicit-linux", "peios", "absent"},
		GuestOS:  func(p string) string { return named[p] },
	})
	vms := map[string]*VM{}
	for _, p := range []string{"explicit-linux", "peios", "absent"} {
		v, err := root.NewVM("vm-"+p, p, BootOpts{})
		if err != nil {
			t.Fatal(err)
		}
		vms[p] = v
	}
	cases := []struct {
		addressing string
		want       map[string]bool // profile -> gets an address
	}{
		{"", map[string]bool{"explicit-linux": true, "peios": false, "absent": false}},
		{AddressingAuto, map[string]bool{"explicit-linux": true, "peios": true, "absent": true}},
		{AddressingNone, map[string]bool{"explicit-linux": false, "peios": false, "absent": false}},
	}
	for i, c := range cases {
		br, err := root.BridgeWithOpts(fmt.Sprintf("br%d", i), BridgeOpts{Addressing: c.addressing})
		if err != nil {
			t.Fatal(err)
		}
		for p, v := range vms {
			if err := br.Attach(bg, v); err != nil {
				t.Fatal(err)
			}
			n, err := br.NIC(v)
			if err != nil {
				t.Fatal(err)
			}
			ip, ok := n.IP()
			if ok != c.want[p] {
				t.Errorf("addressing %q, profile %s: ip %q, ok %v; want ok %v", c.addressing, p, ip, ok, c.want[p])
			}
		}
	}
	// No GuestOS function: no profile names an OS, so links are raw.
	bare := NewRoot(Env{Profiles: StaticProfiles{"linux"}})
	v := mustVM(t, bare, "a")
	br, _ := bare.Bridge("lan")
	if err := br.Attach(bg, v); err != nil {
		t.Fatal(err)
	}
	n, err := br.NIC(v)
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok := n.IP(); ok {
		t.Errorf("no GuestOS function: ip %q", ip)
	}
	for p, want := range map[string]string{"explicit-linux": AddressingAuto, "peios": AddressingNone, "absent": AddressingNone, "unknown": AddressingNone} {
		if got := DefaultAddressing(func(p string) string { return named[p] }, p); got != want {
			t.Errorf("DefaultAddressing(%s) = %q, want %q", p, got, want)
		}
	}
	if got := DefaultAddressing(nil, "linux"); got != AddressingNone {
		t.Errorf("DefaultAddressing(nil) = %q", got)
	}
}
