package lab

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// groupBackend boots and restores groupMachines and keeps one log of every
// snapshot step across machines, so the test sees their interleaving.
type groupBackend struct {
	mu       sync.Mutex
	log      []string
	restores []string // "<vm path> <snapshot file>"
}

type groupMachine struct {
	fakeMachine
	b    *groupBackend
	name string
}

func (b *groupBackend) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, s)
}

func (b *groupBackend) Start(_ context.Context, spec BootSpec) (Machine, error) {
	return &groupMachine{b: b, name: spec.Path}, nil
}

func (b *groupBackend) Restore(_ context.Context, spec BootSpec, snapshot string) (Machine, error) {
	b.mu.Lock()
	b.restores = append(b.restores, spec.Path+" "+filepath.Base(snapshot))
	b.mu.Unlock()
	return &groupMachine{b: b, name: spec.Path}, nil
}

func (m *groupMachine) Pause(context.Context) error  { m.b.record("pause " + m.name); return nil }
func (m *groupMachine) Resume(context.Context) error { m.b.record("resume " + m.name); return nil }
func (m *groupMachine) Snapshot(ctx context.Context, path string) error {
	return os.WriteFile(path, []byte(m.name), 0o644)
}
func (m *groupMachine) SnapshotPrepare(context.Context) error {
	m.b.record("prepare " + m.name)
	return nil
}
func (m *groupMachine) SnapshotSave(_ context.Context, path string) error {
	m.b.record("save " + m.name)
	return os.WriteFile(path, []byte(m.name), 0o644)
}
func (m *groupMachine) SnapshotFinish(context.Context) error {
	m.b.record("finish " + m.name)
	return nil
}

func phase(log []string, verb string) []int {
	var at []int
	for i, l := range log {
		if strings.HasPrefix(l, verb+" ") {
			at = append(at, i)
		}
	}
	return at
}

func TestLabSnapshotSavesTogetherAndRestoresFake(t *testing.T) {
	gb := &groupBackend{}
	root := NewRoot(Env{Profiles: StaticProfiles{"linux"}, Backend: gb})
	ctx := context.Background()
	mem := uint64(256 << 20)
	a, _ := root.NewVM("a", "linux", BootOpts{Memory: &mem})
	b, _ := root.NewVM("b", "linux", BootOpts{})
	dc, _ := root.SubLab("dc1")
	c, _ := dc.NewVM("c", "linux", BootOpts{})
	lan, _ := root.Bridge("lan")
	if err := lan.Attach(bg, a, b); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*VM{a, b} {
		if err := v.Boot(ctx, BootOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	gb.log = nil

	dir := t.TempDir()
	idx, err := root.Snapshot(ctx, dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := gb.log
	prep, pause, save, resume, finish := phase(log, "prepare"), phase(log, "pause"), phase(log, "save"), phase(log, "resume"), phase(log, "finish")
	if len(prep) != 2 || len(save) != 2 || len(finish) != 2 || len(pause) != 1 || len(resume) != 1 {
		t.Fatalf("steps: %q", log)
	}
	if slices.Max(prep) > pause[0] || pause[0] > slices.Min(save) || slices.Max(save) > resume[0] || resume[0] > slices.Min(finish) {
		t.Errorf("not saved together: %q", log)
	}
	if log[pause[0]] != "pause a" {
		t.Errorf("only the running VM is stopped: %q", log)
	}
	if idx.Format != LabFormat || len(idx.VMs) != 3 || idx.VMs[0].Name != "a" || idx.VMs[1].State != "paused" ||
		idx.VMs[2].Name != "dc1/c" || idx.VMs[2].State != "created" || idx.VMs[2].Snapshot != nil ||
		*idx.VMs[0].Snapshot != "a.snap" || idx.VMs[0].MemoryBytes != mem || !slices.Equal(idx.SubLabs, []string{"dc1"}) ||
		len(idx.Bridges) != 1 || !slices.Equal(idx.Bridges[0].Members, []string{"a", "b"}) {
		t.Errorf("lab.json = %+v", idx)
	}
	read, err := ReadLabIndex(dir)
	if err != nil || len(read.VMs) != 3 {
		t.Fatalf("ReadLabIndex: %v %+v", err, read)
	}

	// Into a fresh lab: everything is created.
	other := NewRoot(Env{Profiles: StaticProfiles{"linux"}, Backend: gb})
	vms, err := other.Restore(ctx, dir, read)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 3 || vms[0].State() != Booted || vms[1].State() != Paused || vms[2].State() != Created || vms[2].Path() != "dc1/c" {
		t.Errorf("restored states: %s %s %s", vms[0].State(), vms[1].State(), vms[2].State())
	}
	if *vms[0].Opts().Memory != mem {
		t.Errorf("recorded memory not applied")
	}
	if br, _ := other.find(KindBridge, "lan"); br == nil || !slices.Equal(br.(*Bridge).Members(), []string{"a", "b"}) {
		t.Errorf("bridge not recreated: %v", br)
	}

	// Into itself: the same VM objects now run restored machines.
	oldA := a.Machine()
	bigger := uint64(777 << 20)
	cmdline := "foo=bar"
	c.Boot(ctx, BootOpts{Memory: &bigger, KernelCmdlineAppend: &cmdline})
	again, err := root.Restore(ctx, dir, read)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != a || a.Machine() == oldA || a.State() != Booted || b.State() != Paused {
		t.Errorf("restore into itself did not replace the machines")
	}
	// A VM recorded as created comes back created, with the staged options
	// it had then (per-boot additions since are gone).
	if c.State() != Created {
		t.Errorf("a VM recorded as created came back %s", c.State())
	}
	if o := c.Opts(); o.Memory != nil || o.KernelCmdlineAppend != nil {
		t.Errorf("staged options not put back: memory %v, cmdline append %v", o.Memory, o.KernelCmdlineAppend)
	}
}

// TestBootRecordRoundTrip: every staged option survives lab.json exactly,
// a 64-bit RNG seed and binary file content included.
func TestBootRecordRoundTrip(t *testing.T) {
	mem, cpus, seed := uint64(300<<20), 2, uint64(1<<63+12345)
	cl, app := "console=ttyS0", "x=1"
	at := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	to := 45 * time.Second
	in := BootOpts{Memory: &mem, CPUs: &cpus, KernelCmdline: &cl, KernelCmdlineAppend: &app, RNGSeed: &seed,
		InitialTime: &at, AgentTimeout: &to, Files: []FileSpec{{Path: "/etc/x", Content: "a\x00\xffb", Mode: 0o600}},
		Disks: []DiskSpec{{ID: "d0", Source: DiskScratch, Size: 1 << 30}}}
	m, err := recordBootOpts(in)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(m)
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	out, err := bootOptsFromRecord(back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in  %+v\n out %+v", in, out)
	}
	if empty, err := bootOptsFromRecord(map[string]any{}); err != nil || !reflect.DeepEqual(empty, BootOpts{}) {
		t.Errorf("empty record: %+v %v", empty, err)
	}
}

// TestLabSnapshotKeepsCreationOrder: lab.json lists VMs and bridges in the
// order they were created across the whole tree, not grouped by lab
// (30-runtime.md A12), and a restored lab keeps that order.
func TestLabSnapshotKeepsCreationOrder(t *testing.T) {
	env := Env{Profiles: StaticProfiles{"linux"}, Backend: &groupBackend{}}
	root := NewRoot(env)
	if _, err := root.NewVM("a", "linux", BootOpts{}); err != nil {
		t.Fatal(err)
	}
	dc, _ := root.SubLab("dc1")
	if _, err := dc.NewVM("e", "linux", BootOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Bridge("wan"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.NewVM("idle", "linux", BootOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Bridge("lan"); err != nil {
		t.Fatal(err)
	}
	names := func(idx LabIndex) (vms, bridges []string) {
		for _, v := range idx.VMs {
			vms = append(vms, v.Name)
		}
		for _, b := range idx.Bridges {
			bridges = append(bridges, b.Name)
		}
		return vms, bridges
	}
	ctx := context.Background()
	idx, err := root.Snapshot(ctx, t.TempDir(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantVMs, wantBridges := []string{"a", "dc1/e", "idle"}, []string{"dc1/wan", "lan"}
	if vms, bridges := names(idx); !slices.Equal(vms, wantVMs) || !slices.Equal(bridges, wantBridges) {
		t.Fatalf("lab.json order: vms %v bridges %v, want %v %v", vms, bridges, wantVMs, wantBridges)
	}
	other := NewRoot(env)
	if _, err := other.Restore(ctx, t.TempDir(), idx); err != nil {
		t.Fatal(err)
	}
	again, err := other.Snapshot(ctx, t.TempDir(), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vms, bridges := names(again); !slices.Equal(vms, wantVMs) || !slices.Equal(bridges, wantBridges) {
		t.Fatalf("restored order: vms %v bridges %v", vms, bridges)
	}
}
