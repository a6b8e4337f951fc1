package lab

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func newTestRoot() *Lab {
	return NewRoot(Env{Profiles: StaticProfiles{"peios", "linux"}})
}

func mustVM(t *testing.T, l *Lab, name string) *VM {
	t.Helper()
	v, err := l.NewVM(name, "linux", BootOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}

func TestNewVMAndLookup(t *testing.T) {
	root := newTestRoot()
	opts := BootOpts{CPUs: new(2)}
	v, err := root.NewVM("a", "peios", opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "a" || v.Profile() != "peios" || v.State() != Created || v.Lab() != root || *v.Opts().CPUs != 2 {
		t.Errorf("vm = %s %s %s", v.Name(), v.Profile(), v.State())
	}
	got, err := root.VM("a")
	if err != nil || got != v {
		t.Errorf("VM(a) = %v, %v", got, err)
	}
	if root.Scope().Len(ResVM) != 1 {
		t.Errorf("vm not registered with the root scope")
	}
	_, err = root.VM("nope")
	wantErr(t, err, "lab:vm: no vm named `nope` in lab `provium` or its parent scopes")
}

func TestNewVMErrors(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "a")
	_, err := root.NewVM("a", "linux", BootOpts{})
	wantErr(t, err, "lab:vm: vm `a` already exists in lab `provium` (DuplicateVmName)")
	_, err = root.NewVM("b", "windows", BootOpts{})
	wantErr(t, err, "lab:vm: unknown profile `windows` (known: linux, peios); declare [profiles.windows] in provium.toml, or use profile `linux`, the default image (`provium image build >> provium.toml` pins it)")
	_, err = NewRoot(Env{}).NewVM("b", "linux", BootOpts{})
	wantErr(t, err, "lab:vm: unknown profile `linux` (known: none declared); declare [profiles.linux] in provium.toml, or use profile `linux`, the default image (`provium image build >> provium.toml` pins it)")
	_, err = root.NewVM("b.c", "linux", BootOpts{})
	wantErr(t, err, "lab:vm: invalid vm name `b.c` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)")
	if names := root.VMNames(); !slices.Equal(names, []string{"a"}) {
		t.Errorf("failed creations left members: %v", names)
	}
}

func TestTestScopeWalksParentsAndShadowErrors(t *testing.T) {
	root := newTestRoot()
	shared := mustVM(t, root, "shared")
	lan, _ := root.Bridge("lan")
	dc, _ := root.SubLab("dc1")

	ts := root.NewTestScope()
	if ts.Name() != "provium" || ts.Kind() != LabTestScope || !slices.Equal(ts.Parents(), []*Lab{root}) {
		t.Fatalf("test scope: name %q kind %v parents %v", ts.Name(), ts.Kind(), ts.Parents())
	}
	if ts.Scope() == root.Scope() {
		t.Error("a test scope needs its own scope")
	}
	if v, err := ts.VM("shared"); err != nil || v != shared {
		t.Errorf("lookup through parent: %v %v", v, err)
	}
	if b, err := ts.Bridge("lan"); err != nil || b != lan {
		t.Errorf("bridge lookup through parent: %v %v", b, err)
	}
	if ts.Lookup("dc1") != dc {
		t.Error("dot sugar must find the parent's sub-lab")
	}

	_, err := ts.NewVM("shared", "linux", BootOpts{})
	wantErr(t, err, "provium:vm(\"shared\", …): name already declared at parent scope (lab `provium`). Pick a different name, or use `provium:vm(\"shared\")` to reuse it.")
	_, err = ts.BridgeWithOpts("lan", BridgeOpts{})
	wantErr(t, err, "provium:bridge(\"lan\", …): name already declared at parent scope (lab `provium`). Pick a different name, or use `provium:bridge(\"lan\")` to reuse it.")
	_, err = ts.SubLab("dc1")
	wantErr(t, err, "provium:lab(\"dc1\"): name already declared at parent scope (lab `provium`). Pick a different name, or use `provium.dc1` to reuse it.")

	// Local creations register with the test scope, not the root.
	local := mustVM(t, ts, "local")
	if ts.Scope().Len(ResVM) != 1 || root.Scope().Len(ResVM) != 1 {
		t.Errorf("scope registration: test %d root %d", ts.Scope().Len(ResVM), root.Scope().Len(ResVM))
	}
	if _, err := root.VM("local"); err == nil {
		t.Error("the root must not see test-scope VMs")
	}
	// Names do not walk parents.
	if !slices.Equal(ts.VMNames(), []string{"local"}) || len(ts.BridgeNames()) != 0 {
		t.Errorf("test-scope names: %v %v", ts.VMNames(), ts.BridgeNames())
	}
	// Closing the test scope shuts its VM down and leaves the root's alone.
	if errs := ts.Scope().Close(context.Background()); len(errs) != 0 {
		t.Fatal(errs)
	}
	if local.State() != Shutdown || shared.State() != Created {
		t.Errorf("after test scope close: local %s shared %s", local.State(), shared.State())
	}
}

func TestBridgeLookupOrCreate(t *testing.T) {
	root := newTestRoot()
	a, err := root.Bridge("lan")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := root.Bridge("lan")
	if a != b || a.Lab() != root || root.Scope().Len(ResBridge) != 1 {
		t.Errorf("lookup-or-create made a second bridge")
	}
	ts := root.NewTestScope()
	c, _ := ts.Bridge("wan")
	if c.Lab() != ts || ts.Scope().Len(ResBridge) != 1 {
		t.Error("a missing bridge is created in the calling scope")
	}
	_, err = root.Bridge("a b")
	wantErr(t, err, "lab:bridge: invalid bridge name `a b` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)")
}

func TestBridgeWithOpts(t *testing.T) {
	root := newTestRoot()
	opts, err := ParseBridgeOpts(map[string]any{"subnet": "10.1.2.3/24", "seed": int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := root.BridgeWithOpts("lan", opts)
	if err != nil || b.Opts().Subnet.String() != "10.1.2.0/24" {
		t.Fatalf("%v %v", b, err)
	}
	same, _ := ParseBridgeOpts(map[string]any{"subnet": "10.1.2.0/24", "seed": 7.0})
	if again, err := root.BridgeWithOpts("lan", same); err != nil || again != b {
		t.Errorf("equal opts must return the same bridge: %v", err)
	}
	_, err = root.BridgeWithOpts("lan", BridgeOpts{})
	wantErr(t, err, "lab:bridge: bridge `lan` already exists in lab `provium` with different opts (subnet=10.1.2.0/24, seed=7, asked for subnet=default, seed=default)")
}

func TestSubLabs(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "web")
	dc1, err := root.SubLab("dc1")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := root.SubLab("dc1"); again != dc1 {
		t.Error("existing local sub-lab must be returned")
	}
	if dc1.Name() != "dc1" || dc1.Path() != "dc1" || dc1.Kind() != LabSub || len(dc1.Parents()) != 0 || dc1.Owner() != root {
		t.Errorf("sub-lab: %q %q %v %v", dc1.Name(), dc1.Path(), dc1.Kind(), dc1.Parents())
	}
	if dc1.Scope() != root.Scope() {
		t.Error("a sub-lab's resources close with its creator's scope")
	}
	// Federation: no parent chain.
	if _, err := dc1.VM("web"); err == nil {
		t.Error("a sub-lab must not see its creator's VMs")
	}
	if dc1.Lookup("web") != nil {
		t.Error("dot sugar in a sub-lab must not fall through to the root")
	}
	inner, _ := dc1.SubLab("inner")
	v := mustVM(t, inner, "a")
	if v.Path() != "dc1/inner/a" || inner.Path() != "dc1/inner" {
		t.Errorf("paths: %q %q", v.Path(), inner.Path())
	}
	if root.Scope().Len(ResVM) != 2 {
		t.Errorf("nested sub-lab VM registered with %d", root.Scope().Len(ResVM))
	}
	// A sub-lab made in a test scope closes with the test.
	ts := root.NewTestScope()
	tsub, _ := ts.SubLab("tmp")
	mustVM(t, tsub, "x")
	if ts.Scope().Len(ResVM) != 1 {
		t.Error("test-scope sub-lab VM must register with the test scope")
	}
	_, err = root.SubLab("")
	wantErr(t, err, "lab:lab: invalid lab name `` (must be non-empty, without `/` or whitespace)")
}

func TestAnonymousSubLabs(t *testing.T) {
	root := newTestRoot()
	a := root.AnonymousSubLab()
	if _, err := root.SubLab("__lab_1"); err != nil {
		t.Fatal(err)
	}
	b := root.AnonymousSubLab()
	if a.Name() != "__lab_0" || b.Name() != "__lab_2" {
		t.Errorf("anonymous names: %q %q", a.Name(), b.Name())
	}
	// A test scope skips names its parents hold instead of shadowing them.
	ts := root.NewTestScope()
	if c := ts.AnonymousSubLab(); c.Name() != "__lab_3" {
		t.Errorf("test-scope anonymous name %q", c.Name())
	}
}

func TestLookupOrder(t *testing.T) {
	root := newTestRoot()
	sub, _ := root.SubLab("x")
	if root.Lookup("x") != sub {
		t.Fatal("sub-lab lookup")
	}
	br, _ := root.Bridge("x")
	if root.Lookup("x") != br {
		t.Error("a bridge wins over a sub-lab")
	}
	v := mustVM(t, root, "x")
	if root.Lookup("x") != v {
		t.Error("a VM wins over a bridge")
	}
	// A parent's VM beats a local bridge: kinds are walked one at a time.
	ts := root.NewTestScope()
	if _, err := ts.Bridge("y"); err != nil {
		t.Fatal(err)
	}
	vy := mustVM(t, root, "y")
	if ts.Lookup("y") != vy {
		t.Error("VM walk (with parents) comes before the bridge walk")
	}
	if obj := root.Lookup("missing"); obj != nil {
		t.Errorf("miss = %v, want untyped nil", obj)
	}
}

func TestFreeName(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "base")
	mustVM(t, root, "base-2")
	ts := root.NewTestScope()
	if got := ts.FreeName(KindVM, "base"); got != "base-3" {
		t.Errorf("FreeName = %q", got)
	}
	if got := ts.FreeName(KindSubLab, "base"); got != "base" {
		t.Errorf("FreeName(sub_lab) = %q", got)
	}
}

func TestLabNoBackendErrors(t *testing.T) {
	root := newTestRoot()
	mustVM(t, root, "a")
	err := root.BootAll(context.Background())
	wantErr(t, err, "vm:boot: no VM backend yet (booting guests arrives with the VM core)")
	var wse *WrongStateError
	if err := root.PauseAll(context.Background()); !errors.As(err, &wse) {
		t.Errorf("PauseAll on a created VM = %v", err)
	}
}
