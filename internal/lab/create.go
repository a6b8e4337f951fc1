package lab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Creation error texts. The `…` in the shadow text is U+2026, as the spec
// writes it.
const (
	errFmtShadow           = "%s: name already declared at parent scope (lab `%s`). Pick a different name, or use `%s` to reuse it."
	errFmtDuplicateVM      = "%s: vm `%s` already exists in lab `%s` (DuplicateVmName)"
	errFmtDuplicateBridge  = "%s: bridge `%s` already exists in lab `%s` (DuplicateBridgeName)"
	errFmtDuplicateLab     = "%s: lab `%s` already exists in lab `%s` (DuplicateLabName)"
	errFmtUnknownProfile   = "lab:vm: unknown profile `%s` (known: %s); declare [profiles.%s] in provium.toml, or use profile `linux`, the default image (`provium image build >> provium.toml` pins it)"
	errFmtBridgeOptsDiffer = "lab:bridge: bridge `%s` already exists in lab `%s` with different opts (%s, asked for %s)"
)

// shadowError is the §4 shadowing error for call site `call` (the Lua call as
// the user wrote it) and the form that reuses the parent's member.
func shadowError(call string, parent *Lab, reuse string) error {
	return fmt.Errorf(errFmtShadow, call, parent.Name(), reuse)
}

// reuseForm is how a test body reaches a parent's member of kind.
func reuseForm(kind MemberKind, name string) string {
	switch kind {
	case KindVM:
		return `provium:vm("` + name + `")`
	case KindBridge:
		return `provium:bridge("` + name + `")`
	default:
		return "provium." + name
	}
}

// duplicateError is the error for a second, different member of kind named
// name in lab l.
func duplicateError(call string, kind MemberKind, name string, l *Lab) error {
	switch kind {
	case KindVM:
		return fmt.Errorf(errFmtDuplicateVM, call, name, l.Name())
	case KindBridge:
		return fmt.Errorf(errFmtDuplicateBridge, call, name, l.Name())
	default:
		return fmt.Errorf(errFmtDuplicateLab, call, name, l.Name())
	}
}

// NewVM is `lab:vm(name, profile, opts)`: declare a VM in state created with
// staged boot options, registered with this lab's scope.
func (l *Lab) NewVM(name, profile string, opts BootOpts) (*VM, error) {
	const call = "lab:vm"
	if err := validateVMName(call, name); err != nil {
		return nil, err
	}
	if p := l.parentHolding(KindVM, name); p != nil {
		return nil, shadowError(`provium:vm("`+name+`", …)`, p, reuseForm(KindVM, name))
	}
	if err := l.checkProfile(profile); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.localLocked(KindVM, name) != nil {
		l.mu.Unlock()
		return nil, duplicateError(call, KindVM, name, l)
	}
	v := newVM(l, name, profile, opts)
	l.addLocked(v)
	l.mu.Unlock()
	l.scope.Register(ResVM, v)
	return v, nil
}

func (l *Lab) checkProfile(profile string) error {
	var known []string
	if l.env.Profiles != nil {
		known = l.env.Profiles.ProfileNames()
	}
	if slices.Contains(known, profile) {
		return nil
	}
	if h, ok := l.env.Profiles.(interface{ HasProfile(string) bool }); ok && h.HasProfile(profile) {
		return nil // an implicit profile (the default image)
	}
	list := "none declared"
	if len(known) > 0 {
		sorted := slices.Sorted(slices.Values(known))
		list = strings.Join(sorted, ", ")
	}
	return fmt.Errorf(errFmtUnknownProfile, profile, list, profile)
}

// Bridge is `lab:bridge(name)`: the bridge of that name here or in a parent
// scope, else a new one here with default opts.
func (l *Lab) Bridge(name string) (*Bridge, error) {
	const call = "lab:bridge"
	if err := validateBridgeName(call, name); err != nil {
		return nil, err
	}
	if obj, _ := l.find(KindBridge, name); obj != nil {
		return obj.(*Bridge), nil
	}
	l.mu.Lock()
	// Checked again under the lock: find released it.
	if obj := l.localLocked(KindBridge, name); obj != nil {
		l.mu.Unlock()
		return obj.(*Bridge), nil
	}
	b, err := newBridge(l, name, BridgeOpts{})
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("lab:bridge: %w", err)
	}
	l.addLocked(b)
	l.mu.Unlock()
	l.scope.Register(ResBridge, b)
	return b, nil
}

// BridgeWithOpts is `lab:bridge(name, opts)`: create with opts; a local bridge
// with equal opts is returned, one with other opts is an error, and a parent
// scope's bridge of that name is a shadowing error.
func (l *Lab) BridgeWithOpts(name string, opts BridgeOpts) (*Bridge, error) {
	const call = "lab:bridge"
	if err := validateBridgeName(call, name); err != nil {
		return nil, err
	}
	if p := l.parentHolding(KindBridge, name); p != nil {
		return nil, shadowError(`provium:bridge("`+name+`", …)`, p, reuseForm(KindBridge, name))
	}
	l.mu.Lock()
	if obj := l.localLocked(KindBridge, name); obj != nil {
		l.mu.Unlock()
		b := obj.(*Bridge)
		if !b.Opts().Equal(opts) {
			return nil, fmt.Errorf(errFmtBridgeOptsDiffer, name, l.Name(), b.Opts(), opts)
		}
		return b, nil
	}
	b, err := newBridge(l, name, opts)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("lab:bridge: %w", err)
	}
	l.addLocked(b)
	l.mu.Unlock()
	l.scope.Register(ResBridge, b)
	return b, nil
}

// SubLab is `lab:lab(name)`: the local sub-lab of that name, else a new one.
// Sub-labs have no parent chain (federation: `dc1.web` never finds a sibling's
// or the root's `web`).
func (l *Lab) SubLab(name string) (*Lab, error) {
	const call = "lab:lab"
	if err := validateLabName(call, name); err != nil {
		return nil, err
	}
	if p := l.parentHolding(KindSubLab, name); p != nil {
		return nil, shadowError(`provium:lab("`+name+`")`, p, reuseForm(KindSubLab, name))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if obj := l.localLocked(KindSubLab, name); obj != nil {
		return obj.(*Lab), nil
	}
	sub := l.newSubLab(name)
	l.addLocked(sub)
	return sub, nil
}

// AnonymousSubLab is `lab:lab()`: a new sub-lab named `__lab_<n>` with the
// lowest n this lab has not handed out and that no visible lab already uses.
func (l *Lab) AnonymousSubLab() *Lab {
	for {
		l.mu.Lock()
		name := "__lab_" + strconv.Itoa(l.nextAnon)
		l.nextAnon++
		taken := l.localLocked(KindSubLab, name) != nil
		l.mu.Unlock()
		if taken || l.parentHolding(KindSubLab, name) != nil {
			continue
		}
		// SubLab cannot fail for a generated, valid, unshadowed name.
		sub, err := l.SubLab(name)
		if err != nil {
			panic("lab: anonymous sub-lab: " + err.Error())
		}
		return sub
	}
}

// FreeName returns base, or the first of `base-2`, `base-3`, … that no member
// of kind uses here or in a parent scope: fixtures name their fresh VM or lab
// this way (§3.3).
func (l *Lab) FreeName(kind MemberKind, base string) string {
	name := base
	for n := 2; ; n++ {
		if obj, _ := l.find(kind, name); obj == nil {
			return name
		}
		name = base + "-" + strconv.Itoa(n)
	}
}
