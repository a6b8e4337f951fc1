package netsim

import (
	"fmt"
	"net/netip"
	"sync"
)

// Host hands out what must be unique among the switches of one run:
// switch numbers (in MACs) and default subnets. One Host serves every file
// of a run; it holds no host-global name, so two runs never collide.
type Host struct {
	mu      sync.Mutex
	next    int // switches made
	subnets int // default subnets handed out
}

// NewHost returns an empty Host.
func NewHost() *Host { return &Host{} }

// maxSwitches keeps the 16-bit switch number of MAC addresses unique.
const maxSwitches = 1 << 16

// NewSwitch makes a switch and returns its number in the run (the middle
// of its members' MACs).
func (h *Host) NewSwitch(name string, seed uint64) (*Switch, int, error) {
	h.mu.Lock()
	h.next++
	n := h.next
	h.mu.Unlock()
	if n >= maxSwitches {
		return nil, 0, fmt.Errorf("netsim: more than %d bridges in one run", maxSwitches-1)
	}
	return New(name, seed), n, nil
}

// DefaultSubnet returns a /24 no other default subnet of this run uses:
// 10.<64+k/256>.<k%256>.0/24. The traffic never leaves the switch, so
// overlap with the host's networks does not matter.
func (h *Host) DefaultSubnet() (netip.Prefix, error) {
	h.mu.Lock()
	k := h.subnets
	h.subnets++
	h.mu.Unlock()
	if k >= 192*256 {
		return netip.Prefix{}, fmt.Errorf("netsim: out of default subnets")
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + k/256), byte(k % 256), 0}), 24), nil
}

// PortMAC is the MAC of port number p (1-based, < 256) on switch number n:
// 52:54:00 (QEMU's prefix) is avoided so a guest never mixes ours with
// QEMU's defaults; 02 marks a locally administered unicast address.
func PortMAC(n, p int) MAC {
	return MAC{0x02, 0x50, byte(n >> 8), byte(n), byte(p >> 8), byte(p)}
}

// HostAddr is the address of the k-th member (0-based) on subnet: .2, .3, …
// (.1 is Provium's). ok is false when the subnet is full.
func HostAddr(subnet netip.Prefix, k int) (netip.Addr, bool) {
	a := subnet.Masked().Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	size := uint32(1) << (32 - subnet.Bits())
	off := uint32(k) + 2
	if off >= size-1 { // the last address is broadcast
		return netip.Addr{}, false
	}
	v := base + off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// GatewayAddr is .1 of subnet.
func GatewayAddr(subnet netip.Prefix) netip.Addr {
	a := subnet.Masked().Addr().As4()
	a[3]++
	return netip.AddrFrom4(a)
}
