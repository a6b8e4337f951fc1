package agentclient

import (
	"context"
	"time"

	"github.com/provium/provium/internal/proto"
)

// ClockGet returns the guest's CLOCK_REALTIME in ns since the epoch.
func (c *Client) ClockGet(ctx context.Context) (int64, error) {
	var out proto.ClockResp
	err := c.call(ctx, proto.OpClockGet, proto.Empty{}, &out)
	return out.Ns, err
}

// ClockSet sets the guest's CLOCK_REALTIME (guest-wide) to ns since the
// epoch (negative allowed where the kernel accepts it).
func (c *Client) ClockSet(ctx context.Context, ns int64) error {
	return c.call(ctx, proto.OpClockSet, proto.ClockReq{Ns: ns}, nil)
}

// ClockAdvance jumps the guest's CLOCK_REALTIME by a signed ns amount.
func (c *Client) ClockAdvance(ctx context.Context, ns int64) error {
	return c.call(ctx, proto.OpClockAdvance, proto.ClockReq{Ns: ns}, nil)
}

// ClockSleep makes the agent sleep d on the guest's monotonic clock.
func (c *Client) ClockSleep(ctx context.Context, d time.Duration) error {
	return c.call(ctx, proto.OpClockSleep, proto.ClockReq{Ns: int64(d)}, nil)
}
