package lab

import (
	"slices"
	"testing"
)

// TestMembersInsertionOrder: VMs, then bridges, then sub-labs, each kind in
// insertion order (10-lua-api.md §3).
func TestMembersInsertionOrder(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "b")
	root.Bridge("lan")
	root.SubLab("dc1")
	mustVM(t, root, "a")
	want := []Member{{KindVM, "b"}, {KindVM, "a"}, {KindBridge, "lan"}, {KindSubLab, "dc1"}}
	if got := root.Members(); !slices.Equal(got, want) {
		t.Errorf("Members = %v", got)
	}
	if !slices.Equal(root.VMNames(), []string{"b", "a"}) || !slices.Equal(root.BridgeNames(), []string{"lan"}) || !slices.Equal(root.SubLabNames(), []string{"dc1"}) {
		t.Errorf("names: %v %v %v", root.VMNames(), root.BridgeNames(), root.SubLabNames())
	}
	if empty := NewRoot(Env{}).VMNames(); empty == nil || len(empty) != 0 {
		t.Errorf("empty names must be an empty, non-nil slice: %#v", empty)
	}
}

func TestIncludeAddsMembershipWithoutMoving(t *testing.T) {
	root := newTestRoot()
	v := mustVM(t, root, "v")
	lan, _ := root.Bridge("lan")
	sub, _ := root.SubLab("sub")
	if err := sub.Include(v, lan); err != nil {
		t.Fatal(err)
	}
	if got, _ := sub.VM("v"); got != v || sub.Lookup("lan") != lan {
		t.Error("included members must be found in the including lab")
	}
	if v.Lab() != root || v.Path() != "v" || !slices.Equal(root.VMNames(), []string{"v"}) {
		t.Error("include must not move the VM")
	}
	// Again: a no-op, not a duplicate.
	if err := sub.Include(v); err != nil || len(sub.Members()) != 2 {
		t.Errorf("re-include: %v, members %v", err, sub.Members())
	}
	// Remove from the root: the sub-lab still holds it; it is still registered.
	if !root.Remove(v) || root.Remove(v) {
		t.Error("Remove must report presence once")
	}
	if got, _ := sub.VM("v"); got != v || root.Scope().Len(ResVM) != 1 {
		t.Error("remove is graph-only")
	}
}

func TestIncludeValidatesBeforeCommit(t *testing.T) {
	root := newTestRoot()
	other, _ := root.SubLab("other")
	a1 := mustVM(t, root, "a")
	b1 := mustVM(t, root, "b")
	a2 := mustVM(t, other, "a")
	lan1, _ := root.Bridge("lan")
	lan2, _ := other.Bridge("lan")
	dst, _ := root.SubLab("dst")

	wantErr(t, dst.Include(b1, a1, a2), "lab:include: vm `a` already exists in lab `dst` (DuplicateVmName)")
	if len(dst.Members()) != 0 {
		t.Fatalf("a failed include committed %v", dst.Members())
	}
	wantErr(t, dst.Include(lan1, lan2), "lab:include: bridge `lan` already exists in lab `dst` (DuplicateBridgeName)")
	if err := dst.Include(a1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, dst.Include(a2), "lab:include: vm `a` already exists in lab `dst` (DuplicateVmName)")
	sub2, _ := other.SubLab("dst")
	wantErr(t, root.Include(sub2), "lab:include: lab `dst` already exists in lab `provium` (DuplicateLabName)")
	wantErr(t, dst.Include(nil), "lab:include: expected a VM, Bridge or Lab, got nil")
	wantErr(t, dst.Include((*VM)(nil)), "lab:include: expected a VM, Bridge or Lab, got nil")
}

func TestIncludeLabRules(t *testing.T) {
	root := newTestRoot()
	a, _ := root.SubLab("a")
	b, _ := a.SubLab("b")
	wantErr(t, b.Include(a), "lab:include: cannot include lab `a` into lab `b`: it would contain itself")
	wantErr(t, a.Include(a), "lab:include: cannot include lab `a` into lab `a`: it would contain itself")
	wantErr(t, a.Include(root), "lab:include: cannot include lab `provium`: only sub-labs can be members")
	c, _ := root.SubLab("c")
	if err := b.Include(c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.SubLabNames(), []string{"c"}) || c.Owner() != root {
		t.Error("sub-lab include")
	}
}

func TestIncludeShadowFromTestScope(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "shared")
	other, _ := root.SubLab("other")
	twin := mustVM(t, other, "shared")
	ts := root.NewTestScope()
	wantErr(t, ts.Include(twin), "provium:include(vm \"shared\"): name already declared at parent scope (lab `provium`). Pick a different name, or use `provium:vm(\"shared\")` to reuse it.")
	if len(ts.Members()) != 0 {
		t.Error("shadowing include committed")
	}
}

func TestRemoveByName(t *testing.T) {
	root := newTestRoot()
	root.SubLab("x")
	root.Bridge("x")
	mustVM(t, root, "x")
	for _, want := range []MemberKind{KindVM, KindBridge, KindSubLab} {
		if !root.RemoveName("x") {
			t.Fatalf("RemoveName did not remove the %s", want)
		}
		for _, m := range root.Members() {
			if m.Kind == want {
				t.Errorf("RemoveName removed the wrong kind: %v left", root.Members())
			}
		}
	}
	if root.RemoveName("x") || root.Remove(nil) {
		t.Error("absent removals must report false")
	}
}
