package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/provium/provium/internal/netsim"
)

// uplinkState is a bridge's connected uplink (enable_uplink).
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

// uplinkMACPort is the port number of the gateway's MAC (never a member's).
const uplinkMACPort = 0xfffe

// EnableUplink is `bridge:enable_uplink()`: a NAT gateway port in a
// user-space stack joins the switch; members get a default route and DNS
// through .1 and `host.provium` (the subnet's last usable address) reaches
// the host's 127.0.0.1. Idempotent.
func (b *Bridge) EnableUplink(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf(errFmtBridgeClosed, "enable_uplink", b.name)
	}
	if b.uplink != nil {
		b.mu.Unlock()
		return nil
	}
	u := b.gateway
	b.mu.Unlock()
	if u == nil {
		var err error
		if u, err = netsim.NewUplink(b.subnet, netsim.PortMAC(b.num, uplinkMACPort)); err != nil {
			return fmt.Errorf("bridge:enable_uplink: bridge `%s`: %w", b.name, err)
		}
	}
	if err := u.Connect(b.sw); err != nil {
		return fmt.Errorf("bridge:enable_uplink: bridge `%s`: %w", b.name, err)
	}
	b.mu.Lock()
	b.gateway = u
	b.uplink = &uplinkState{gateway: u.Gateway, hostAddr: u.HostAddr, stopFn: u.Disconnect}
	b.mu.Unlock()
	return errors.Join(b.refreshGuests(ctx, "bridge:enable_uplink")...)
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

// UplinkEnabled reports whether the uplink is on.
func (b *Bridge) UplinkEnabled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.uplink != nil
}
