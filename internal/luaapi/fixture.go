package luaapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/sched"
	"github.com/provium/provium/internal/snapfile"
)

// Built is the raw output of one fixture build: a VM snapshot file or a lab
// snapshot directory in the builder's scratch space.
type Built struct {
	Kind fixture.Kind
	Path string
	// Cleanup removes the raw output (and anything else the build kept).
	Cleanup func()
}

// FixtureEvents observe the cache protocol (30-runtime.md C2); nil fields
// are skipped.
type FixtureEvents struct {
	Waiting  func(name, heldBy string)
	Started  func(name string)
	Done     func(name string, d time.Duration, bytes uint64)
	CacheHit func(name string)
}

// FixtureEnv connects vm_fixture/lab_fixture to the runtime: the run's
// keyer and cache, and Build, which runs a fixture chunk in a fresh Lua
// state (the runner owns Lua states) and returns the snapshot it returned.
type FixtureEnv struct {
	Cache  *fixture.Cache
	Keyer  *fixture.Keyer
	Argv   []string
	Build  func(ctx context.Context, src fixture.Source) (Built, error)
	Warn   func(line string)
	Events FixtureEvents
}

// SetFixtures enables vm_fixture/lab_fixture for this file.
func (a *API) SetFixtures(env *FixtureEnv) { a.snapState().fix = env }

// SnapshotResult classifies a fixture chunk's return value at idx: the
// kind and path of a Snapshot or LabSnapshot, else what it is for the
// "must return" error (Lua type, or userdata class such as `VM`).
func SnapshotResult(L *lua.Thread, idx int) (kind fixture.Kind, path, what string) {
	if v, class, ok := L.ToObject(idx); ok {
		switch o := v.(type) {
		case *snapshotObj:
			return fixture.KindVM, o.path, classSnapshot
		case *labSnapshotObj:
			return fixture.KindLab, o.dir, classLabSnapshot
		}
		return "", "", class
	}
	return "", "", L.TypeName(idx)
}

func (a *API) vmFixture(L *lua.Thread) (int, error) {
	return a.obtainFixture(L, "vm_fixture", fixture.KindVM)
}

func (a *API) labFixture(L *lua.Thread) (int, error) {
	return a.obtainFixture(L, "lab_fixture", fixture.KindLab)
}

// obtainFixture resolves, keys and obtains a fixture (building it under the
// cache's lock when needed) and restores an independent copy into the
// calling scope (30-runtime.md A4).
func (a *API) obtainFixture(L *lua.Thread, site string, kind fixture.Kind) (int, error) {
	env := a.snapState().fix
	raw, err := checkString(L, 1, site)
	if err != nil {
		return 0, err
	}
	if env == nil {
		return 0, fmt.Errorf("%s: fixtures are not available here (no fixture cache configured)", site)
	}
	name, err := fixture.NormalizeName(raw)
	if err != nil {
		return 0, err
	}
	src, key, err := env.Keyer.Fixture(name)
	if err != nil {
		return 0, err
	}
	caller := a.current
	ctx := L.Context()
	var got any // *lab.VM or *lab.Lab
	restore := func(ctx context.Context, k fixture.Kind, p string) error {
		if k != kind {
			return &fixture.WrongKindError{Name: name, Actual: k}
		}
		if k == fixture.KindVM {
			vm, err := a.restoreVMFixture(ctx, caller, p)
			got = vm
			return err
		}
		sub, err := a.restoreLabFixture(L, caller, name, p)
		got = sub
		return err
	}
	var built Built
	defer func() {
		if built.Cleanup != nil {
			built.Cleanup()
		}
	}()
	ev := env.Events
	hooks := fixture.Hooks{
		Restore: restore,
		Build: func(ctx context.Context, _ *fixture.Lock) (int64, error) {
			out, err := env.Build(ctx, src)
			built = out
			if err != nil {
				return 0, err
			}
			if out.Kind != kind {
				return 0, &fixture.WrongKindError{Name: name, Actual: out.Kind}
			}
			if kind == fixture.KindVM {
				return packVM(env.Cache, key, out.Path)
			}
			return packLab(env.Cache, key, out.Path)
		},
		RestoreBuilt: func(ctx context.Context) error { return restore(ctx, built.Kind, built.Path) },
		Warn:         env.Warn,
	}
	if ev.Waiting != nil {
		hooks.Waiting = func(heldBy string) { ev.Waiting(name, heldBy) }
	}
	if ev.Started != nil {
		hooks.Started = func() { ev.Started(name) }
	}
	if ev.Done != nil {
		hooks.Done = func(d time.Duration, n uint64) { ev.Done(name, d, n) }
	}
	if ev.CacheHit != nil {
		hooks.CacheHit = func() { ev.CacheHit(name) }
	}
	req := fixture.Request{Name: name, Key: key, Kind: kind, Info: fixture.LockInfo{
		File: a.snapState().file, Fixture: name, Argv: env.Argv, Started: time.Now(),
	}}
	if f := sched.FromContext(ctx); f != nil {
		ctx = fixture.WithGateWait(ctx, f.WaitGate)
	}
	if err := env.Cache.Obtain(ctx, req, hooks); err != nil {
		return 0, ctxErr(ctx, err)
	}
	a.push(L, got)
	return 1, nil
}

// corrupt marks an error caused by a cache entry's content.
func corrupt(err error) error {
	if err == nil || errors.Is(err, fixture.ErrCorruptEntry) {
		return err
	}
	return fmt.Errorf("%w: %v", fixture.ErrCorruptEntry, err)
}

// restoreVMFixture creates a fresh VM in the calling scope, named as in the
// builder (`-2`, `-3`… when taken), and restores the snapshot into it. A
// failure removes the VM again.
func (a *API) restoreVMFixture(ctx context.Context, caller *lab.Lab, p string) (*lab.VM, error) {
	man, err := snapfile.ReadManifest(p)
	if err != nil {
		return nil, corrupt(err)
	}
	base := man.VMName
	if base == "" {
		base = "vm"
	}
	mem, cpus := man.MemoryBytes, man.CPUs
	vm, err := caller.NewVM(caller.FreeName(lab.KindVM, base), man.Profile, lab.BootOpts{Memory: &mem, CPUs: &cpus})
	if err != nil {
		return nil, err
	}
	if err := vm.Restore(ctx, p, &mem, &cpus); err != nil {
		caller.Remove(vm)
		_ = vm.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	a.afterRestore(vm, man.TimeControlled)
	return vm, nil
}

// restoreLabFixture restores a lab snapshot into a fresh sub-lab of the
// calling scope named after the fixture's last path component.
func (a *API) restoreLabFixture(L *lua.Thread, caller *lab.Lab, name, dir string) (*lab.Lab, error) {
	if _, err := lab.ReadLabIndex(dir); err != nil {
		return nil, corrupt(err)
	}
	sub, err := caller.SubLab(caller.FreeName(lab.KindSubLab, path.Base(name)))
	if err != nil {
		return nil, err
	}
	vms, err := a.RestoreLab(L, sub, dir)
	if err != nil {
		for _, vm := range vms {
			if vm != nil {
				_ = vm.Close(context.WithoutCancel(L.Context()))
			}
		}
		caller.Remove(sub)
		return nil, err
	}
	return sub, nil
}

// extractMembers unpacks a raw snapshot's members (sparsely) into dir for
// packing into the cache.
func extractMembers(raw, dir string) (snapfile.Manifest, []snapfile.Member, error) {
	r, err := snapfile.Open(raw)
	if err != nil {
		return snapfile.Manifest{}, nil, err
	}
	defer r.Close()
	var members []snapfile.Member
	for i := 0; ; i++ {
		info, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Manifest(), members, nil
		}
		if err != nil {
			return snapfile.Manifest{}, nil, err
		}
		p := filepath.Join(dir, fmt.Sprintf("m%d", i))
		if err := r.ExtractSparse(p); err != nil {
			return snapfile.Manifest{}, nil, err
		}
		members = append(members, snapfile.Member{Name: info.Name, Path: p})
	}
}

// packVM compresses a raw VM snapshot into the cache as `<key>.snap`.
func packVM(c *fixture.Cache, key, raw string) (int64, error) {
	dir := c.TempPath(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	man, members, err := extractMembers(raw, dir)
	if err != nil {
		return 0, fmt.Errorf("reading the built snapshot: %w", err)
	}
	return c.PackVM(key, man, members...)
}

// packLab compresses a raw lab snapshot into the cache as `<key>.lab/`.
func packLab(c *fixture.Cache, key, raw string) (int64, error) {
	labJSON, err := os.ReadFile(filepath.Join(raw, lab.LabIndexFile))
	if err != nil {
		return 0, err
	}
	idx, err := lab.ReadLabIndex(raw)
	if err != nil {
		return 0, err
	}
	dir := c.TempPath(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	var vms []fixture.LabVM
	for i, rec := range idx.VMs {
		if rec.Snapshot == nil {
			continue
		}
		sub := filepath.Join(dir, fmt.Sprintf("v%d", i))
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return 0, err
		}
		man, members, err := extractMembers(filepath.Join(raw, *rec.Snapshot), sub)
		if err != nil {
			return 0, fmt.Errorf("reading the built snapshot of `%s`: %w", rec.Name, err)
		}
		vms = append(vms, fixture.LabVM{File: *rec.Snapshot, Manifest: man, Members: members})
	}
	return c.PackLab(key, labJSON, vms)
}

// PackBuilt compresses a build's raw output into the cache as the entry of
// key (`<key>.snap` or `<key>.lab/`), returning its size on disk.
func PackBuilt(c *fixture.Cache, key string, b Built) (int64, error) {
	if b.Kind == fixture.KindLab {
		return packLab(c, key, b.Path)
	}
	return packVM(c, key, b.Path)
}
