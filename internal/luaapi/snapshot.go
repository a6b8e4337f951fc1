package luaapi

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
)

// Class names of snapshot userdata.
const (
	classSnapshot    = "Snapshot"
	classLabSnapshot = "LabSnapshot"
)

// Live-stream refusal texts (10-lua-api.md §6.3, §2.6).
const (
	refuseHeaderFmt = "provium: %s refused — file `%s` has live streams:"
	refuseFooter    = "Close the streams before snapshotting (or remove the snapshot)."
	resetHeaderFmt  = "provium: reset_between_tests would auto-snapshot a live stream — file `%s` has live streams:"
	resetFooter     = "Open streams inside test() bodies instead."
	errFmtOpenFiles = "%s: vm `%s` has %d open file(s); close them before snapshotting"
)

// snapAPI is the snapshot side of one file's API: temporary snapshots
// (deleted at file end) and the file name refusals show.
type snapAPI struct {
	classes bool
	file    string
	tempDir string
	seq     int
	fix     *FixtureEnv // set by the runner; nil: fixtures unavailable
}

func (a *API) snapState() *snapAPI {
	if a.snap == nil {
		a.snap = &snapAPI{}
	}
	return a.snap
}

// SetFileName names the file in snapshot refusals (its display path).
func (a *API) SetFileName(name string) { a.snapState().file = name }

// CloseSnapshots deletes the file's temporary snapshots (10-lua-api.md §4:
// unadopted temp snapshots go at file end).
func (a *API) CloseSnapshots() error {
	s := a.snapState()
	if s.tempDir == "" {
		return nil
	}
	err := os.RemoveAll(s.tempDir)
	s.tempDir = ""
	return err
}

// tempPath returns a fresh path for a temporary snapshot (suffix ".snap" for
// a file, "" for a lab directory).
func (a *API) tempPath(suffix string) (string, error) {
	s := a.snapState()
	if s.tempDir == "" {
		dir, err := os.MkdirTemp("", "provium-snap-")
		if err != nil {
			return "", fmt.Errorf("temporary snapshot directory: %w", err)
		}
		s.tempDir = dir
	}
	s.seq++
	return filepath.Join(s.tempDir, fmt.Sprintf("s%d%s", s.seq, suffix)), nil
}

// fileName is the file that refusals name: the runner's display path, else
// the outermost test or fixture frame.
func (a *API) fileName(L *lua.Thread) string {
	if f := a.snapState().file; f != "" {
		return f
	}
	stack := L.Stack()
	for i := len(stack) - 1; i >= 0; i-- {
		if strings.HasSuffix(stack[i].Source, creationSiteTestSuffix) || strings.HasSuffix(stack[i].Source, creationSiteFixtureSufx) {
			return stack[i].Source
		}
	}
	return "<unknown>"
}

// snapshotObj is a VM snapshot file (Snapshot userdata).
type snapshotObj struct {
	path string
}

// labSnapshotObj is a lab snapshot directory (LabSnapshot userdata).
type labSnapshotObj struct {
	dir string
}

func (a *API) defineSnapshotClasses(L *lua.Thread) error {
	s := a.snapState()
	if s.classes {
		return nil
	}
	for _, c := range []lua.Class{snapshotClass(), labSnapshotClass()} {
		if err := L.DefineClass(c); err != nil {
			return fmt.Errorf("luaapi: define %s: %w", c.Name, err)
		}
	}
	s.classes = true
	return nil
}

func (a *API) pushSnapshot(L *lua.Thread, obj any) error {
	if err := a.defineSnapshotClasses(L); err != nil {
		return err
	}
	switch o := obj.(type) {
	case *snapshotObj:
		L.PushObject(o, classSnapshot)
	case *labSnapshotObj:
		L.PushObject(o, classLabSnapshot)
	default:
		panic(fmt.Sprintf("luaapi: pushSnapshot of %T", obj))
	}
	return nil
}

func snapshotClass() lua.Class {
	get := func(L *lua.Thread, site string) (*snapshotObj, error) { return self[*snapshotObj](L, "snapshot:"+site) }
	return lua.Class{
		Name: classSnapshot,
		Methods: toFunctions(map[string]method{
			"path": func(L *lua.Thread) (int, error) {
				s, err := get(L, "path")
				if err != nil {
					return 0, err
				}
				L.PushString(s.path)
				return 1, nil
			},
			"size": func(L *lua.Thread) (int, error) {
				s, err := get(L, "size")
				if err != nil {
					return 0, err
				}
				var n int64
				if st, err := os.Stat(s.path); err == nil {
					n = st.Size()
				}
				L.PushInteger(n)
				return 1, nil
			},
			"delete": func(L *lua.Thread) (int, error) {
				s, err := get(L, "delete")
				if err != nil {
					return 0, err
				}
				if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return 0, fmt.Errorf("snapshot:delete: %w", err)
				}
				return 0, nil
			},
		}),
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				s, err := get(L, "tostring")
				if err != nil {
					return 0, err
				}
				L.PushString("snapshot(" + s.path + ")")
				return 1, nil
			},
		},
	}
}

func labSnapshotClass() lua.Class {
	get := func(L *lua.Thread, site string) (*labSnapshotObj, error) {
		return self[*labSnapshotObj](L, "lab_snapshot:"+site)
	}
	return lua.Class{
		Name: classLabSnapshot,
		Methods: toFunctions(map[string]method{
			"path": func(L *lua.Thread) (int, error) {
				s, err := get(L, "path")
				if err != nil {
					return 0, err
				}
				L.PushString(s.dir)
				return 1, nil
			},
			"size": func(L *lua.Thread) (int, error) {
				s, err := get(L, "size")
				if err != nil {
					return 0, err
				}
				var n int64
				_ = filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() {
						if info, err := d.Info(); err == nil {
							n += info.Size()
						}
					}
					return nil
				})
				L.PushInteger(n)
				return 1, nil
			},
			"delete": func(L *lua.Thread) (int, error) {
				s, err := get(L, "delete")
				if err != nil {
					return 0, err
				}
				if err := os.RemoveAll(s.dir); err != nil {
					return 0, fmt.Errorf("lab_snapshot:delete: %w", err)
				}
				return 0, nil
			},
		}),
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				s, err := get(L, "tostring")
				if err != nil {
					return 0, err
				}
				L.PushString("lab_snapshot(" + s.dir + ")")
				return 1, nil
			},
		},
	}
}

// liveStreamLines lists the live streams of vms as §6.3 lines, ordered by
// creation site.
func (a *API) liveStreamLines(vms []*lab.VM) []string {
	type item struct {
		src        string
		line       int
		kind, what string
	}
	var items []item
	for s := range a.streams {
		if !s.concerns(vms) || !s.open() {
			continue
		}
		it := item{src: "<unknown>", kind: s.kind, what: s.detail}
		if s.site != nil {
			it.src, it.line = s.site.Source, s.site.Line
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(x, y item) int {
		return cmp.Or(cmp.Compare(x.src, y.src), cmp.Compare(x.line, y.line), cmp.Compare(x.kind, y.kind), cmp.Compare(x.what, y.what))
	})
	lines := make([]string, len(items))
	for i, it := range items {
		at := "<unknown>"
		if it.src != "<unknown>" {
			at = fmt.Sprintf("%s:%d", it.src, it.line)
		}
		lines[i] = fmt.Sprintf("  - %s(%s) at %s", it.kind, it.what, at)
	}
	return lines
}

// concerns reports whether a snapshot of vms must wait for s: a stream of
// one of them, or a capture on a bridge one of them is a member of.
func (s *streamObj) concerns(vms []*lab.VM) bool {
	if s.vm != nil && slices.Contains(vms, s.vm) {
		return true
	}
	if s.bridge != nil {
		for _, v := range s.bridge.MemberVMs() {
			if slices.Contains(vms, v) {
				return true
			}
		}
	}
	return false
}

// quiescent refuses a snapshot of vms while streams or files are open.
// call is `vm:snapshot()` or `lab:snapshot()`.
func (a *API) quiescent(L *lua.Thread, call string, vms []*lab.VM) error {
	if lines := a.liveStreamLines(vms); len(lines) > 0 {
		msg := fmt.Sprintf(refuseHeaderFmt, call, a.fileName(L)) + "\n" + strings.Join(lines, "\n") + "\n" + refuseFooter
		return errors.New(msg)
	}
	site := strings.TrimSuffix(call, "()")
	for _, vm := range vms {
		if n := a.openFileCount(vm); n > 0 {
			return fmt.Errorf(errFmtOpenFiles, site, vm.Name(), n)
		}
	}
	return nil
}

// ResetRefusal is the chunk error of reset_between_tests when file-scope
// streams are open (10-lua-api.md §2.6); "" when there are none.
func (a *API) ResetRefusal(file string) string {
	var vms []*lab.VM
	for _, sv := range a.Root.TreeVMs() {
		vms = append(vms, sv.VM)
	}
	lines := a.liveStreamLines(vms)
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf(resetHeaderFmt, file) + "\n" + strings.Join(lines, "\n") + "\n" + resetFooter
}

// markForSnapshot tells the guest whether its clock is test-controlled,
// which the snapshot records (a restore then leaves the clock alone).
func (a *API) markForSnapshot(vm *lab.VM) {
	if m, ok := vm.Machine().(*guest.Machine); ok && m != nil {
		m.SetTimeControlled(a.timeControlled(vm))
	}
}

// snapshotVMMethods installs vm:snapshot and vm:restore (vm.go calls it).
func (a *API) snapshotVMMethods(ms map[string]method) {
	ms["snapshot"] = a.vmSnapshot
	ms["restore"] = a.vmRestore
}

// snapshotLabMethods installs the lab's snapshot and fixture methods (lab.go
// calls it).
func (a *API) snapshotLabMethods(ms map[string]method) {
	ms["snapshot"] = a.labSnapshot
	ms["restore"] = a.labRestore
	ms["vm_fixture"] = dropLab(a.vmFixture)
	ms["lab_fixture"] = dropLab(a.labFixture)
}

func (a *API) vmSnapshot(L *lua.Thread) (int, error) {
	const site = "vm:snapshot"
	vm, err := self[*lab.VM](L, site)
	if err != nil {
		return 0, err
	}
	if st := vm.State(); st != lab.Booted && st != lab.Paused {
		return 0, vm.Snapshot(L.Context(), "") // the wrong-state error
	}
	if err := a.quiescent(L, "vm:snapshot()", []*lab.VM{vm}); err != nil {
		return 0, err
	}
	var path string
	if L.IsNoneOrNil(2) {
		if path, err = a.tempPath(".snap"); err != nil {
			return 0, fmt.Errorf("%s: %w", site, err)
		}
	} else {
		if path, err = checkString(L, 2, site); err != nil {
			return 0, err
		}
		if path, err = filepath.Abs(path); err != nil {
			return 0, fmt.Errorf("%s: %w", site, err)
		}
	}
	a.markForSnapshot(vm)
	if err := vm.Snapshot(L.Context(), path); err != nil {
		return 0, ctxErr(L.Context(), err)
	}
	return 1, a.pushSnapshot(L, &snapshotObj{path: path})
}

// snapshotArg reads a Snapshot userdata or a path at i.
func snapshotArg(L *lua.Thread, i int, site string) (string, error) {
	if v, _, ok := L.ToObject(i); ok {
		if s, ok := v.(*snapshotObj); ok {
			return s.path, nil
		}
	}
	if L.Type(i) == lua.TypeString {
		p, _ := L.ToString(i)
		return p, nil
	}
	return "", fmt.Errorf("%s: expected a Snapshot or a path, got %s", site, L.TypeName(i))
}

func (a *API) vmRestore(L *lua.Thread) (int, error) {
	const site = "vm:restore"
	vm, err := self[*lab.VM](L, site)
	if err != nil {
		return 0, err
	}
	if st := vm.State(); st != lab.Created && st != lab.Shutdown && st != lab.Dead {
		return 0, vm.Restore(L.Context(), "", nil, nil) // the wrong-state error
	}
	path, err := snapshotArg(L, 2, site)
	if err != nil {
		return 0, err
	}
	man, err := snapfile.ReadManifest(path)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", site, path, err)
	}
	if err := snapfile.CheckProfile(man, vm.Name(), vm.Profile()); err != nil {
		return 0, err
	}
	if err := vm.Restore(L.Context(), path, nil, nil); err != nil {
		return 0, ctxErr(L.Context(), err)
	}
	a.afterRestore(vm, man.TimeControlled)
	return 0, nil
}

// afterRestore keeps the new machine (console) and the clock mode.
func (a *API) afterRestore(vm *lab.VM, timeControlled bool) {
	if m, ok := vm.Machine().(*guest.Machine); ok && m != nil {
		a.remember(vm, m)
	}
	if timeControlled {
		a.markTimeControlled(vm)
	}
}

func treeVMs(l *lab.Lab) []*lab.VM {
	var vms []*lab.VM
	for _, sv := range l.TreeVMs() {
		vms = append(vms, sv.VM)
	}
	return vms
}

// SnapshotLab saves l into dir (a new temporary one when dir is "") after
// the quiescence check; it returns the directory.
func (a *API) SnapshotLab(L *lua.Thread, l *lab.Lab, dir string) (string, error) {
	vms := treeVMs(l)
	if err := a.quiescent(L, "lab:snapshot()", vms); err != nil {
		return "", err
	}
	var err error
	if dir == "" {
		if dir, err = a.tempPath(""); err != nil {
			return "", fmt.Errorf("lab:snapshot: %w", err)
		}
	}
	for _, vm := range vms {
		a.markForSnapshot(vm)
	}
	sizeOf := func(p string) (uint64, int, error) {
		m, err := snapfile.ReadManifest(p)
		return m.MemoryBytes, m.CPUs, err
	}
	if _, err := l.Snapshot(L.Context(), dir, proto.ProtocolVersion, sizeOf); err != nil {
		return "", ctxErr(L.Context(), err)
	}
	return dir, nil
}

func (a *API) labSnapshot(L *lua.Thread) (int, error) {
	const site = "lab:snapshot"
	l, err := self[*lab.Lab](L, site)
	if err != nil {
		return 0, err
	}
	dir := ""
	if !L.IsNoneOrNil(2) {
		if dir, err = checkString(L, 2, site); err != nil {
			return 0, err
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return 0, fmt.Errorf("%s: %w", site, err)
		}
	}
	out, err := a.SnapshotLab(L, l, dir)
	if err != nil {
		return 0, err
	}
	if dir != "" {
		L.PushValue(2)
		return 1, nil
	}
	return 1, a.pushSnapshot(L, &labSnapshotObj{dir: out})
}

// RestoreLab restores the lab snapshot in dir into l (30-runtime.md A12).
func (a *API) RestoreLab(L *lua.Thread, l *lab.Lab, dir string) ([]*lab.VM, error) {
	idx, err := lab.ReadLabIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("lab:restore: %s: %w", dir, err)
	}
	vms, err := l.Restore(L.Context(), dir, idx)
	for i, vm := range vms {
		if vm == nil || idx.VMs[i].Snapshot == nil {
			continue
		}
		tc := false
		if m, merr := snapfile.ReadManifest(filepath.Join(dir, *idx.VMs[i].Snapshot)); merr == nil {
			tc = m.TimeControlled
		}
		a.afterRestore(vm, tc)
	}
	if err != nil {
		return vms, fmt.Errorf("lab:restore: %w", ctxErr(L.Context(), err))
	}
	return vms, nil
}

func (a *API) labRestore(L *lua.Thread) (int, error) {
	const site = "lab:restore"
	l, err := self[*lab.Lab](L, site)
	if err != nil {
		return 0, err
	}
	var dir string
	if v, _, ok := L.ToObject(2); ok {
		s, ok := v.(*labSnapshotObj)
		if !ok {
			return 0, fmt.Errorf("%s: expected a LabSnapshot or a directory, got %s", site, L.TypeName(2))
		}
		dir = s.dir
	} else if dir, err = checkString(L, 2, site); err != nil {
		return 0, err
	}
	_, err = a.RestoreLab(L, l, dir)
	return 0, err
}
