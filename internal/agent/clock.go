package agent

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

func clockGet() (proto.ClockResp, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return proto.ClockResp{}, fmt.Errorf("clock_get: %w", err)
	}
	return proto.ClockResp{Ns: ts.Nano()}, nil
}

func clockSet(ns int64) error {
	ts := unix.NsecToTimespec(ns)
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_set: %w", err)
	}
	return nil
}

// clockAdvance jumps CLOCK_REALTIME by ns in one kernel operation
// (ADJ_SETOFFSET), so no time is lost between reading and setting it.
// Kernels without it get read-add-set.
func clockAdvance(ns int64) error {
	if ns == 0 {
		return nil
	}
	off := unix.NsecToTimeval(0)
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 { // the kernel wants 0 <= tv_usec (ns with ADJ_NANO) < 1e9
		sec, nsec = sec-1, nsec+1e9
	}
	off.Sec, off.Usec = sec, nsec
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: off}
	if _, err := unix.Adjtimex(&tx); err == nil {
		return nil
	} else if err != unix.EINVAL && err != unix.EOPNOTSUPP {
		return fmt.Errorf("clock_advance: %w", err)
	}
	now, err := clockGet()
	if err != nil {
		return err
	}
	return clockSet(now.Ns + ns)
}

// clockSleep sleeps on the monotonic clock (Go timers use it).
func clockSleep(ctx context.Context, ns int64) error {
	if ns < 0 {
		return &proto.Error{Message: fmt.Sprintf("clock_sleep: negative duration %dns", ns)}
	}
	if !sleepCtx(ctx, time.Duration(ns)) {
		return ctx.Err()
	}
	return nil
}
