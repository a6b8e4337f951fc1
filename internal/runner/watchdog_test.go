package runner

import (
	"sync"
	"testing"
	"time"
)

// The watchdog does not fire while the file is parked (all elapsed time
// counted as parked), and fires once parking stops and d has passed.
func TestWatchdogExtendedByParkedTime(t *testing.T) {
	start := time.Now()
	var (
		mu     sync.Mutex
		parked = true
		frozen time.Duration
	)
	parkedFn := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if parked {
			return time.Since(start)
		}
		return frozen
	}
	fired := make(chan struct{})
	stop := startWatchdog(20*time.Millisecond, parkedFn, func() { close(fired) })
	defer stop()
	time.Sleep(200 * time.Millisecond) // ten deadlines, all parked
	select {
	case <-fired:
		t.Fatal("the watchdog fired while the file was parked")
	default:
	}
	mu.Lock()
	parked, frozen = false, time.Since(start)
	mu.Unlock()
	select {
	case <-fired:
	case <-time.After(20 * time.Second):
		t.Fatal("the watchdog never fired after parking ended")
	}
}
