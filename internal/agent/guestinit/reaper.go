package guestinit

import (
	"time"

	"golang.org/x/sys/unix"
)

// Reap waits for every child forever, as PID 1 must so orphans do not
// pile up as zombies. Every reaped pid and its status are
// passed to watch (the caller restarts the agent server child). Reap never
// returns.
func Reap(watch func(pid int, status unix.WaitStatus)) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			// ECHILD: nothing to wait for right now. Sleep rather than spin;
			// a new orphan will be waited for on the next round.
			time.Sleep(time.Second)
		case watch != nil:
			watch(pid, ws)
		}
	}
}
