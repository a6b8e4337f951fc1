package lab

import (
	"sync"
	"sync/atomic"

	"github.com/provium/provium/internal/netsim"
)

// Profiles tells a lab which profiles VMs may be created from. The config
// package provides the real set; tests use StaticProfiles.
type Profiles interface {
	// ProfileNames lists the known profiles (sorted, for messages).
	ProfileNames() []string
}

// StaticProfiles is a fixed list of profile names.
type StaticProfiles []string

// ProfileNames implements Profiles.
func (p StaticProfiles) ProfileNames() []string { return p }

// Env is what every lab of one file shares: sub-labs and test scopes get the
// same config, VM backend (and, later, events and pool).
type Env struct {
	Profiles Profiles // nil: no profile is known
	Backend  Backend  // nil until the VM core exists
	// Observe, when set, hears each VM lifecycle change in a few words
	// ("booted in 2.4s", "shut down", "exited unexpectedly"): the -v
	// per-VM diagnostics. It may be called from any goroutine, never with a
	// VM's state lock held (a lifecycle operation may still be in progress,
	// so it must not call back into that VM's lifecycle).
	Observe func(vm *VM, what string)

	// Net hands out run-unique bridge numbers and subnets; nil: the
	// backend's (when it offers one), else one for this file.
	Net *netsim.Host
	// Seed and File derive default bridge seeds (run seed + file + bridge).
	Seed uint64
	File string
	// GuestOS tells the guest_os a profile names itself, "" when it names
	// none; nil means no profile names one. Bridges without an addressing
	// opt configure only members whose profile names "linux".
	GuestOS func(profile string) string

	net *fileNet // the file's bridges, shared by all its labs
}

// LabKind tells how a lab came to be, which fixes its name and parent chain.
type LabKind int

const (
	LabRoot      LabKind = iota // the file's `provium`
	LabTestScope                // bound to `provium` during one test body
	LabSub                      // lab:lab(), fixture labs: no parent chain
)

// rootName is what root and test-scope labs answer to lab:name().
const rootName = "provium"

// MemberKind is the kind of a lab member, as `lab:members()` reports it.
type MemberKind string

const (
	KindVM     MemberKind = "vm"
	KindBridge MemberKind = "bridge"
	KindSubLab MemberKind = "sub_lab"
)

// noun is how messages call a member of this kind.
func (k MemberKind) noun() string {
	if k == KindSubLab {
		return "lab"
	}
	return string(k)
}

// Object is a lab member: *VM, *Bridge or *Lab.
type Object interface {
	Name() string
	memberKind() MemberKind
}

// Member is one entry of Lab.Members.
type Member struct {
	Kind MemberKind
	Name string
}

// entry is one membership. Members are keyed by (kind, name): a VM and a
// bridge may share a name (dot sugar then finds the VM first).
type entry struct {
	kind MemberKind
	name string
	obj  Object
}

// Lab is a set of VMs, bridges and sub-labs with a lookup chain of parent labs
// (10-lua-api.md §3–4). Methods are safe for concurrent use; a lab's lock is
// never held while another lab's lock is taken.
type Lab struct {
	name    string // "" for root and test scopes
	kind    LabKind
	owner   *Lab   // the lab that created it (nil for the root)
	parents []*Lab // lookup chain, nearest first; empty for root and sub-labs
	env     *Env
	scope   *Scope
	barrier *barriers
	// created numbers the VMs and bridges of the file's whole tree in
	// creation order (shared by every lab of the file): lab.json lists
	// them in that order (30-runtime.md A12).
	created *atomic.Uint64

	mu       sync.Mutex
	members  []entry // insertion order
	nextAnon int     // next candidate for `__lab_<n>`
}

// NewRoot returns the root lab of one file, with a fresh scope: resources
// created at file top level close when the file ends.
func NewRoot(env Env) *Lab {
	if env.Net == nil {
		if h, ok := env.Backend.(interface{ NetHost() *netsim.Host }); ok {
			env.Net = h.NetHost()
		} else {
			env.Net = netsim.NewHost()
		}
	}
	env.net = &fileNet{}
	return &Lab{kind: LabRoot, env: &env, scope: NewScope(), barrier: newBarriers(), created: new(atomic.Uint64)}
}

// NewTestScope returns the lab bound to `provium` for one test body. Its
// parent chain is this lab and this lab's parents; it has its own scope, which
// the runner closes when the test ends.
func (l *Lab) NewTestScope() *Lab {
	parents := append([]*Lab{l}, l.parents...)
	return &Lab{kind: LabTestScope, owner: l, parents: parents, env: l.env, scope: NewScope(), barrier: newBarriers(), created: l.created}
}

func (l *Lab) newSubLab(name string) *Lab {
	// A sub-lab's resources end with the scope its creator belongs to, so it
	// shares that scope rather than owning one nobody would close.
	return &Lab{name: name, kind: LabSub, owner: l, env: l.env, scope: l.scope, barrier: newBarriers(), created: l.created}
}

func (l *Lab) memberKind() MemberKind { return KindSubLab }

// Name is `lab:name()`: "provium" for the root and test scopes.
func (l *Lab) Name() string {
	if l.kind != LabSub {
		return rootName
	}
	return l.name
}

// Kind tells root, test scope or sub-lab apart.
func (l *Lab) Kind() LabKind { return l.kind }

// Owner is the lab that created this one (nil for the root).
func (l *Lab) Owner() *Lab { return l.owner }

// Parents is the lookup chain, nearest first (a copy).
func (l *Lab) Parents() []*Lab { return append([]*Lab(nil), l.parents...) }

// Scope is the registry this lab's resources (and those of its sub-labs) are
// closed with.
func (l *Lab) Scope() *Scope { return l.scope }

// Env is the environment shared by every lab of the file.
func (l *Lab) Env() Env { return *l.env }

// Path is the lab's position below the file root, `dc1` or `dc1/inner`; empty
// for the root and test scopes. VM paths extend it.
func (l *Lab) Path() string {
	if l.kind != LabSub {
		return ""
	}
	return joinPath(l.owner.Path(), l.name)
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// chain is this lab followed by its parents: the lookup walk.
func (l *Lab) chain() []*Lab {
	return append([]*Lab{l}, l.parents...)
}

// local returns this lab's member of kind named name, or nil.
func (l *Lab) local(kind MemberKind, name string) Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.localLocked(kind, name)
}

func (l *Lab) localLocked(kind MemberKind, name string) Object {
	for _, e := range l.members {
		if e.kind == kind && e.name == name {
			return e.obj
		}
	}
	return nil
}

// find walks the chain for a member of kind; it returns the member and the lab
// holding it.
func (l *Lab) find(kind MemberKind, name string) (Object, *Lab) {
	for _, c := range l.chain() {
		if obj := c.local(kind, name); obj != nil {
			return obj, c
		}
	}
	return nil, nil
}

// parentHolding returns the nearest parent scope holding a member of kind
// named name: the shadowing check.
func (l *Lab) parentHolding(kind MemberKind, name string) *Lab {
	for _, p := range l.parents {
		if p.local(kind, name) != nil {
			return p
		}
	}
	return nil
}

// addLocked appends a membership; the caller holds l.mu and has checked it.
func (l *Lab) addLocked(obj Object) {
	l.members = append(l.members, entry{kind: obj.memberKind(), name: obj.Name(), obj: obj})
}
