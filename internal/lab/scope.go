package lab

import (
	"context"
	"fmt"
	"sync"
)

// Closer is anything a scope can close at its end. Close must be idempotent:
// the walker may reach a resource the test already closed.
type Closer interface {
	Close(ctx context.Context) error
}

// ResourceKind groups registered resources; scope end closes kinds in the
// order of closeOrder.
type ResourceKind string

const (
	ResStream  ResourceKind = "stream"
	ResProcess ResourceKind = "process"
	ResFile    ResourceKind = "file"
	ResWorker  ResourceKind = "worker"
	ResVM      ResourceKind = "vm"
	ResBridge  ResourceKind = "bridge"
)

// closeOrder is dependents before what they depend on: a stream reads from a
// process or file, which lives in a worker or VM, which is attached to bridges.
var closeOrder = []ResourceKind{ResStream, ResProcess, ResFile, ResWorker, ResVM, ResBridge}

// parallelKinds may close concurrently: VMs are independent QEMU processes and
// stopping one can take seconds.
var parallelKinds = map[ResourceKind]bool{ResVM: true}

// Scope is the registry of resources to close when a test (or the file) ends.
// Resources register with the scope active when they were created; luaapi
// decides which one that is. A Scope is safe for concurrent use.
type Scope struct {
	mu    sync.Mutex
	items map[ResourceKind][]Closer
}

// NewScope returns an empty scope.
func NewScope() *Scope {
	return &Scope{items: make(map[ResourceKind][]Closer)}
}

// Register adds c to be closed at scope end with the other resources of kind.
func (s *Scope) Register(kind ResourceKind, c Closer) {
	if !knownKind(kind) {
		panic(fmt.Sprintf("lab: Register with unknown resource kind %q", kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[kind] = append(s.items[kind], c)
}

// Len reports how many resources of kind are registered (and not yet closed by
// a Close walk).
func (s *Scope) Len(kind ResourceKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items[kind])
}

func knownKind(kind ResourceKind) bool {
	for _, k := range closeOrder {
		if k == kind {
			return true
		}
	}
	return false
}

// CloseError is one failure of the close walk.
type CloseError struct {
	Kind ResourceKind
	Err  error
}

func (e *CloseError) Error() string { return fmt.Sprintf("closing %s: %v", e.Kind, e.Err) }
func (e *CloseError) Unwrap() error { return e.Err }

// Close closes every registered resource, kind by kind in closeOrder and in
// registration order within a kind, and empties the registry. A failing or
// panicking Close is recorded and the walk goes on, so one bad resource never
// leaks the rest. Resources registered while the walk runs (or later) are left
// for the next Close, which makes Close safe to call again.
func (s *Scope) Close(ctx context.Context) []error {
	s.mu.Lock()
	items := s.items
	s.items = make(map[ResourceKind][]Closer)
	s.mu.Unlock()

	var errs []error
	for _, kind := range closeOrder {
		list := items[kind]
		if len(list) == 0 {
			continue
		}
		if parallelKinds[kind] {
			errs = append(errs, closeParallel(ctx, kind, list)...)
			continue
		}
		for _, c := range list {
			if err := safeClose(ctx, c); err != nil {
				errs = append(errs, &CloseError{Kind: kind, Err: err})
			}
		}
	}
	return errs
}

// closeParallel closes list concurrently and reports errors in registration
// order, so the result does not depend on scheduling.
func closeParallel(ctx context.Context, kind ResourceKind, list []Closer) []error {
	var errs []error
	for _, err := range runParallel(list, func(c Closer) error { return safeClose(ctx, c) }) {
		if err != nil {
			errs = append(errs, &CloseError{Kind: kind, Err: err})
		}
	}
	return errs
}

// safeClose turns a panic in Close into an error: the walk is the last line of
// defence against leaked QEMU processes and must reach every resource.
func safeClose(ctx context.Context, c Closer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Close(ctx)
}

// Detach removes the registered resources of kind that keep accepts and
// returns them: the scope no longer closes them (--keep-failed hands a
// failed test's VMs to the run, which closes them later).
func (s *Scope) Detach(kind ResourceKind, keep func(Closer) bool) []Closer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out, rest []Closer
	for _, c := range s.items[kind] {
		if keep(c) {
			out = append(out, c)
		} else {
			rest = append(rest, c)
		}
	}
	s.items[kind] = rest
	return out
}

// DetachBridges detaches every bridge of the scope (the bridges of kept
// VMs stay up with them).
func (s *Scope) DetachBridges() []Closer {
	return s.Detach(ResBridge, func(Closer) bool { return true })
}

// DetachRunningVMs detaches the booted or paused VMs of the scope.
func (s *Scope) DetachRunningVMs() []*VM {
	var vms []*VM
	for _, c := range s.Detach(ResVM, func(c Closer) bool {
		v, ok := c.(*VM)
		if !ok {
			return false
		}
		st := v.State()
		return st == Booted || st == Paused
	}) {
		vms = append(vms, c.(*VM))
	}
	return vms
}
