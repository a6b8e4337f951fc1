package netsim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork"
	"github.com/sirupsen/logrus"
)

// UplinkPort is the switch port name of a bridge's uplink; no VM can have
// it (VM names cannot start with a dot).
const UplinkPort = ".uplink"

// HostProviumZone and HostProviumRecord make `host.provium` resolve through
// the uplink's DNS too, not only through the hosts file.
const (
	uplinkZone   = "provium."
	uplinkRecord = "host"
	uplinkMTU    = 1500
)

// UplinkAddrs are the addresses an uplink uses on a subnet: the gateway
// (.1: default route and DNS) and the address that reaches the host's
// loopback (the last usable one, e.g. .254 of a /24). ok is false for
// subnets too small to hold both beside a member (/30).
func UplinkAddrs(subnet netip.Prefix) (gateway, host netip.Addr, ok bool) {
	if subnet.Bits() > 29 {
		return netip.Addr{}, netip.Addr{}, false
	}
	a := subnet.Masked().Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	last := base + (uint32(1) << (32 - subnet.Bits())) - 2
	return GatewayAddr(subnet), netip.AddrFrom4([4]byte{byte(last >> 24), byte(last >> 16), byte(last >> 8), byte(last)}), true
}

var quietOnce sync.Once

// Uplink is a NAT gateway in a user-space TCP/IP stack (gVisor, through
// gvisor-tap-vsock) that a bridge's switch can carry as a port: the
// members' default route and DNS server, and an address NATed to the
// host's 127.0.0.1. Nothing is created on the host. The library offers no
// way to stop its stack, so a bridge keeps one Uplink for its lifetime and
// only connects and disconnects it.
type Uplink struct {
	vn       *virtualnetwork.VirtualNetwork
	Gateway  netip.Addr
	HostAddr netip.Addr

	mu     sync.Mutex
	cancel context.CancelFunc
	sw     *Switch
}

// NewUplink builds the gateway stack for subnet; gwMAC is its MAC.
func NewUplink(subnet netip.Prefix, gwMAC MAC) (*Uplink, error) {
	gw, host, ok := UplinkAddrs(subnet)
	if !ok {
		return nil, fmt.Errorf("subnet %s is too small for an uplink (needs /29 or larger)", subnet)
	}
	// The library logs every disconnect at error level on the process-wide
	// logrus logger; the uplink's errors reach the test as return values.
	quietOnce.Do(func() { logrus.SetOutput(io.Discard) })
	cfg := &types.Configuration{
		MTU:               uplinkMTU,
		Subnet:            subnet.Masked().String(),
		GatewayIP:         gw.String(),
		GatewayMacAddress: gwMAC.String(),
		DNS: []types.Zone{{
			Name:    uplinkZone,
			Records: []types.Record{{Name: uplinkRecord, IP: net.IP(host.AsSlice())}},
		}},
		NAT:               map[string]string{host.String(): "127.0.0.1"},
		GatewayVirtualIPs: []string{host.String()},
		Protocol:          types.QemuProtocol,
	}
	vn, err := virtualnetwork.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	return &Uplink{vn: vn, Gateway: gw, HostAddr: host}, nil
}

// Connect plugs the uplink into sw as port UplinkPort (which isolation does
// not cut off).
func (u *Uplink) Connect(sw *Switch) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cancel != nil {
		return nil
	}
	ours, theirs := net.Pipe()
	if _, err := sw.AddPeer(UplinkPort, ours, true); err != nil {
		theirs.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_ = u.vn.AcceptQemu(ctx, theirs)
		theirs.Close()
	}()
	context.AfterFunc(ctx, func() { theirs.Close() })
	u.cancel, u.sw = cancel, sw
	return nil
}

// Disconnect unplugs the uplink; idempotent.
func (u *Uplink) Disconnect() {
	u.mu.Lock()
	cancel, sw := u.cancel, u.sw
	u.cancel, u.sw = nil, nil
	u.mu.Unlock()
	if cancel == nil {
		return
	}
	sw.RemovePort(UplinkPort)
	cancel()
}
