package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// uplinkState is a bridge's running uplink (enable_uplink).
type uplinkState struct {
	gateway  netip.Addr // .1: default route and DNS of the members
	hostAddr netip.Addr // reaches the host's loopback (host.provium)
	stopFn   func()
}

func (u *uplinkState) stop() {
	if u.stopFn != nil {
		u.stopFn()
	}
}

// EnableUplink is `bridge:enable_uplink()`.
func (b *Bridge) EnableUplink(ctx context.Context) error {
	return fmt.Errorf("bridge:enable_uplink: bridge `%s`: the uplink is not available yet", b.name)
}

// DisableUplink is `bridge:disable_uplink()`; idempotent.
func (b *Bridge) DisableUplink(ctx context.Context) error {
	b.mu.Lock()
	up := b.uplink
	b.uplink = nil
	b.mu.Unlock()
	if up == nil {
		return nil
	}
	up.stop()
	return errors.Join(b.refreshGuests(ctx, "bridge:disable_uplink")...)
}
