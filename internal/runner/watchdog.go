package runner

import (
	"sync"
	"time"
)

// minRecheck bounds how often a watchdog re-arms while its file is parked.
const minRecheck = 10 * time.Millisecond

// startWatchdog calls fire once d has passed, not counting time the file
// spends parked in the pool or waiting on another file's fixture build
// (parked reports the file's total; 30-runtime.md B7). stop disarms it.
func startWatchdog(d time.Duration, parked func() time.Duration, fire func()) (stop func()) {
	start, base := time.Now(), parked()
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	check := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		spent := time.Since(start) - (parked() - base)
		if spent < d {
			t.Reset(max(d-spent, minRecheck))
			mu.Unlock()
			return
		}
		stopped = true
		mu.Unlock()
		fire()
	}
	mu.Lock()
	t = time.AfterFunc(d, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
