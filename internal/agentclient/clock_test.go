package agentclient_test

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The clock is guest-wide: in-process this would be the host's clock, so
// only reading and sleeping are tested here (set/advance run in a guest,
// TestGuestClockAdvance).
func TestClockGetAndSleep(t *testing.T) {
	c := newAgent(t)
	before := time.Now().UnixNano()
	ns, err := c.ClockGet(ctx(t))
	after := time.Now().UnixNano()
	if err != nil || ns < before || ns > after {
		t.Fatalf("clock_get %d not within [%d, %d]: %v", ns, before, after, err)
	}
	if err := c.ClockSleep(ctx(t), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A cancelled sleep returns with the context's error.
	cctx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancel()
	if err := c.ClockSleep(cctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled sleep: %v", err)
	}
	if err := c.ClockSleep(ctx(t), -1); err == nil {
		t.Fatal("negative sleep accepted")
	}
}
