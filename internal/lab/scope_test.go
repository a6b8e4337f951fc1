package lab

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// recorder is a Closer that logs its closes into a shared journal.
type recorder struct {
	name    string
	journal *journal
	err     error
	panics  bool
	closes  int
}

type journal struct {
	mu  sync.Mutex
	log []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.log = append(j.log, s)
}

func (r *recorder) Close(context.Context) error {
	r.closes++
	r.journal.add(r.name)
	if r.panics {
		panic("boom in " + r.name)
	}
	return r.err
}

func TestScopeClosesKindsInOrder(t *testing.T) {
	j := &journal{}
	s := NewScope()
	// Registered deliberately out of kind order.
	reg := []struct {
		kind ResourceKind
		name string
	}{
		{ResBridge, "bridge1"}, {ResVM, "vm1"}, {ResWorker, "worker1"}, {ResFile, "file1"},
		{ResProcess, "proc1"}, {ResStream, "stream1"}, {ResStream, "stream2"}, {ResFile, "file2"},
		{ResBridge, "bridge2"}, {ResProcess, "proc2"}, {ResWorker, "worker2"},
	}
	for _, r := range reg {
		s.Register(r.kind, &recorder{name: r.name, journal: j})
	}
	if errs := s.Close(context.Background()); len(errs) != 0 {
		t.Fatalf("errs = %v", errs)
	}
	want := "stream1 stream2 proc1 proc2 file1 file2 worker1 worker2 vm1 bridge1 bridge2"
	if got := strings.Join(j.log, " "); got != want {
		t.Errorf("close order\n got %s\nwant %s", got, want)
	}
}

func TestScopeCollectsErrorsAndPanics(t *testing.T) {
	j := &journal{}
	s := NewScope()
	bad := errors.New("stuck")
	s.Register(ResStream, &recorder{name: "s", journal: j, panics: true})
	s.Register(ResFile, &recorder{name: "f", journal: j, err: bad})
	s.Register(ResVM, &recorder{name: "v1", journal: j, panics: true})
	s.Register(ResVM, &recorder{name: "v2", journal: j, err: bad})
	s.Register(ResBridge, &recorder{name: "b", journal: j})
	errs := s.Close(context.Background())
	if len(j.log) != 5 {
		t.Fatalf("the walk stopped early: closed %v", j.log)
	}
	if len(errs) != 4 {
		t.Fatalf("errs = %v, want 4", errs)
	}
	var ce *CloseError
	wantKinds := []ResourceKind{ResStream, ResFile, ResVM, ResVM}
	for i, err := range errs {
		if !errors.As(err, &ce) || ce.Kind != wantKinds[i] {
			t.Errorf("errs[%d] = %v, want a CloseError of kind %s", i, err, wantKinds[i])
		}
	}
	if !strings.Contains(errs[0].Error(), "panic: boom in s") || !errors.Is(errs[1], bad) {
		t.Errorf("errs = %v", errs)
	}
	// VM errors keep registration order even though VMs close in parallel.
	if !strings.Contains(errs[2].Error(), "boom in v1") || !errors.Is(errs[3], bad) {
		t.Errorf("vm errs out of order: %v", errs[2:])
	}
}

func TestScopeCloseDrainsAndCanRunAgain(t *testing.T) {
	j := &journal{}
	s := NewScope()
	first := &recorder{name: "first", journal: j}
	s.Register(ResFile, first)
	s.Close(context.Background())
	if s.Len(ResFile) != 0 {
		t.Fatalf("registry not drained")
	}
	second := &recorder{name: "second", journal: j}
	s.Register(ResFile, second)
	s.Close(context.Background())
	if first.closes != 1 || second.closes != 1 {
		t.Errorf("closes: first %d second %d, want 1 each", first.closes, second.closes)
	}
}

func TestScopeRegisterUnknownKindPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Register with an unknown kind must panic (programming error)")
		}
	}()
	NewScope().Register(ResourceKind("socket"), &recorder{journal: &journal{}})
}

// Detached resources leave the scope: its close walk no longer reaches them.
func TestScopeDetach(t *testing.T) {
	j := &journal{}
	s := NewScope()
	keep := &recorder{name: "keep", journal: j}
	s.Register(ResBridge, &recorder{name: "b1", journal: j})
	s.Register(ResVM, keep)
	s.Register(ResVM, &recorder{name: "other", journal: j})
	got := s.Detach(ResVM, func(c Closer) bool { return c == Closer(keep) })
	if len(got) != 1 || got[0] != Closer(keep) {
		t.Fatalf("detached %v", got)
	}
	if b := s.DetachBridges(); len(b) != 1 {
		t.Fatalf("bridges detached: %d", len(b))
	}
	s.Close(context.Background())
	if strings.Join(j.log, ",") != "other" {
		t.Fatalf("closed %v, want only other", j.log)
	}
	// A created VM is not running: DetachRunningVMs leaves it.
	root := newTestRoot()
	v := mustVM(t, root, "a")
	if vms := root.Scope().DetachRunningVMs(); len(vms) != 0 {
		t.Fatalf("detached a created VM: %v", vms)
	}
	if root.Scope().Len(ResVM) != 1 || v.State() != Created {
		t.Fatal("the created VM left the scope")
	}
}
