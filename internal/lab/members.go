package lab

import (
	"errors"
	"fmt"
)

// Include error texts.
const (
	errIncludeNil       = "lab:include: expected a VM, Bridge or Lab, got nil"
	errFmtIncludeScope  = "lab:include: cannot include lab `%s`: only sub-labs can be members"
	errFmtIncludeCycle  = "lab:include: cannot include lab `%s` into lab `%s`: it would contain itself"
	errFmtIncludeShadow = `provium:include(%s "%s")`
)

// Include is `lab:include(x)`: add memberships for existing VMs, bridges and
// sub-labs without moving them (they keep their owner, path and scope). Every
// object is checked before any is added, so a bad array changes nothing.
// Including an object that is already a member is a no-op.
func (l *Lab) Include(objs ...Object) error {
	const call = "lab:include"
	var add []Object
	for _, obj := range objs {
		if isNilObject(obj) {
			return errors.New(errIncludeNil)
		}
		kind, name := obj.memberKind(), obj.Name()
		if err := l.checkIncludable(call, obj); err != nil {
			return err
		}
		if p := l.parentHolding(kind, name); p != nil {
			return shadowError(fmt.Sprintf(errFmtIncludeShadow, kind.noun(), name), p, reuseForm(kind, name))
		}
		switch cur := l.local(kind, name); {
		case cur == obj:
			continue
		case cur != nil:
			return duplicateError(call, kind, name, l)
		}
		dup := false
		for _, a := range add {
			if a.memberKind() != kind || a.Name() != name {
				continue
			}
			if a != obj {
				return duplicateError(call, kind, name, l)
			}
			dup = true
		}
		if !dup {
			add = append(add, obj)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, obj := range add {
		// Re-checked under the lock so a concurrent creation cannot slip a
		// second member of the same name in between validation and commit.
		if cur := l.localLocked(obj.memberKind(), obj.Name()); cur != nil && cur != obj {
			return duplicateError(call, obj.memberKind(), obj.Name(), l)
		}
	}
	for _, obj := range add {
		if l.localLocked(obj.memberKind(), obj.Name()) == nil {
			l.addLocked(obj)
		}
	}
	return nil
}

func (l *Lab) checkIncludable(call string, obj Object) error {
	switch o := obj.(type) {
	case *VM:
		return validateVMName(call, o.Name())
	case *Bridge:
		return validateBridgeName(call, o.Name())
	case *Lab:
		if o.kind != LabSub {
			return fmt.Errorf(errFmtIncludeScope, o.Name())
		}
		if o == l || o.reaches(l) {
			return fmt.Errorf(errFmtIncludeCycle, o.Name(), l.Name())
		}
		return validateLabName(call, o.Name())
	}
	return fmt.Errorf("lab:include: unsupported member %T", obj)
}

// reaches reports whether target is l or below l through sub-lab memberships.
func (l *Lab) reaches(target *Lab) bool {
	seen := map[*Lab]bool{}
	var walk func(*Lab) bool
	walk = func(x *Lab) bool {
		if x == target {
			return true
		}
		if seen[x] {
			return false
		}
		seen[x] = true
		for _, sub := range x.SubLabs() {
			if walk(sub) {
				return true
			}
		}
		return false
	}
	return walk(l)
}

// isNilObject catches both a nil interface and a typed nil pointer in one.
func isNilObject(obj Object) bool {
	switch o := obj.(type) {
	case nil:
		return true
	case *VM:
		return o == nil
	case *Bridge:
		return o == nil
	case *Lab:
		return o == nil
	}
	return false
}

// Remove is `lab:remove(obj)`: drop obj's membership here (graph only: nothing
// is stopped or closed). It reports whether obj was a member.
func (l *Lab) Remove(obj Object) bool {
	if isNilObject(obj) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.members {
		if e.obj == obj {
			l.members = append(l.members[:i], l.members[i+1:]...)
			return true
		}
	}
	return false
}

// RemoveName is `lab:remove(name)`: remove the VM of that name, else the
// bridge, else the sub-lab. It reports whether something was removed.
func (l *Lab) RemoveName(name string) bool {
	for _, kind := range lookupOrder {
		if obj := l.local(kind, name); obj != nil {
			return l.Remove(obj)
		}
	}
	return false
}

// Members is `lab:members()`: this lab's direct members, VMs first, then
// bridges, then sub-labs, each kind in insertion order (10-lua-api.md §3).
func (l *Lab) Members() []Member {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Member, 0, len(l.members))
	for _, kind := range []MemberKind{KindVM, KindBridge, KindSubLab} {
		for _, e := range l.members {
			if e.kind == kind {
				out = append(out, Member{Kind: e.kind, Name: e.name})
			}
		}
	}
	return out
}

func (l *Lab) namesOf(kind MemberKind) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []string{}
	for _, e := range l.members {
		if e.kind == kind {
			out = append(out, e.name)
		}
	}
	return out
}

// VMNames is `lab:vm_names()`: direct VMs, insertion order.
func (l *Lab) VMNames() []string { return l.namesOf(KindVM) }

// BridgeNames is `lab:bridge_names()`: direct bridges, insertion order.
func (l *Lab) BridgeNames() []string { return l.namesOf(KindBridge) }

// SubLabNames is `lab:sub_lab_names()`: direct sub-labs, insertion order.
func (l *Lab) SubLabNames() []string { return l.namesOf(KindSubLab) }

// VMs are the direct VM members, insertion order (lab:boot() and friends).
func (l *Lab) VMs() []*VM { return membersOf[*VM](l, KindVM) }

// Bridges are the direct bridge members, insertion order.
func (l *Lab) Bridges() []*Bridge { return membersOf[*Bridge](l, KindBridge) }

// SubLabs are the direct sub-lab members, insertion order.
func (l *Lab) SubLabs() []*Lab { return membersOf[*Lab](l, KindSubLab) }

func membersOf[T Object](l *Lab, kind MemberKind) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []T
	for _, e := range l.members {
		if e.kind == kind {
			out = append(out, e.obj.(T))
		}
	}
	return out
}
