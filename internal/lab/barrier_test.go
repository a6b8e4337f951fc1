package lab

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBarrierCountOneOpensAtOnce(t *testing.T) {
	root := newTestRoot()
	a, err := root.Arrive("x", 1)
	if err != nil || !a.Opened() {
		t.Fatalf("%v %v", a, err)
	}
	if err := a.Wait(context.Background(), 0); err != nil {
		t.Errorf("wait after opening: %v", err)
	}
}

func TestBarrierOpensOnCountAndResets(t *testing.T) {
	root := newTestRoot()
	first, _ := root.Arrive("pair", 2)
	if first.Opened() {
		t.Fatal("first of two must not open")
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait(context.Background(), time.Hour) }()
	second, _ := root.Arrive("pair", 2)
	if !second.Opened() {
		t.Fatal("second of two must open")
	}
	if err := <-done; err != nil {
		t.Errorf("waiter: %v", err)
	}
	select {
	case <-first.Done():
	default:
		t.Error("Done must be closed once open")
	}
	// The name is free again: a new round with a new count.
	again, err := root.Arrive("pair", 3)
	if err != nil || again.Opened() {
		t.Errorf("new round: %v %v", again, err)
	}
}

func TestBarrierTimeout(t *testing.T) {
	root := newTestRoot()
	a, _ := root.Arrive("pair", 2)
	wantErr(t, a.Wait(context.Background(), 0), "lab:barrier: `pair` timed out after 0s (1/2 arrived)")
	// The timed-out arrival withdrew: the name starts afresh with any count.
	b, err := root.Arrive("pair", 3)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := root.Arrive("pair", 3)
	wantErr(t, c.Wait(context.Background(), 10*time.Millisecond), "lab:barrier: `pair` timed out after 0.01s (2/3 arrived)")
	wantErr(t, b.Abandon(500*time.Millisecond), "lab:barrier: `pair` timed out after 0.5s (1/3 arrived)")
}

func TestBarrierCancelledContext(t *testing.T) {
	root := newTestRoot()
	a, _ := root.Arrive("x", 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled ctx = %v", err)
	}
}

func TestBarrierErrors(t *testing.T) {
	root := newTestRoot()
	_, err := root.Arrive("x", 0)
	wantErr(t, err, "lab:barrier: count must be an integer >= 1 (got 0)")
	root.Arrive("x", 2)
	_, err = root.Arrive("x", 3)
	wantErr(t, err, "lab:barrier: `x` was opened for 2 arrivals, this call asks for 3")
}

func TestBarrierPerLab(t *testing.T) {
	root := newTestRoot()
	root.Arrive("x", 2)
	ts := root.NewTestScope()
	a, _ := ts.Arrive("x", 2)
	if a.Opened() {
		t.Error("barriers do not walk parents: a test scope's arrival must not meet the root's")
	}
}
