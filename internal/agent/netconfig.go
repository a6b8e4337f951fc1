package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agent/kmod"
	"github.com/provium/provium/internal/proto"
)

// Files the network configuration owns a part of.
const (
	hostsFile      = "/etc/hosts"
	resolvFile     = "/etc/resolv.conf"
	nsswitchFile   = "/etc/nsswitch.conf"
	hostsBegin     = "# provium network: begin (managed by the provium agent)"
	hostsEnd       = "# provium network: end"
	defaultNetWait = 20 * time.Second
)

// netConfig applies a NetConfigReq (see proto.OpNetConfig).
func netConfig(ctx context.Context, r proto.NetConfigReq) (proto.NetConfigResp, error) {
	out := proto.NetConfigResp{Ifnames: make([]string, len(r.Ifaces))}
	wait := defaultNetWait
	if r.WaitMs > 0 {
		wait = time.Duration(r.WaitMs) * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	var loaded time.Time // the last driver load
	for i, want := range r.Ifaces {
		mac, err := net.ParseMAC(want.MAC)
		if err != nil {
			return out, &proto.Error{Message: fmt.Sprintf("net_config: bad MAC %q", want.MAC)}
		}
		var prev net.HardwareAddr
		if want.Previous != "" {
			if prev, err = net.ParseMAC(want.Previous); err != nil {
				return out, &proto.Error{Message: fmt.Sprintf("net_config: bad MAC %q", want.Previous)}
			}
		}
		var ifc *net.Interface
		for {
			if ifc = interfaceByMAC(mac); ifc != nil {
				break
			}
			if ifc = interfaceByMAC(prev); prev != nil && ifc != nil {
				if err := setMAC(ifc.Name, mac); err != nil {
					return out, err
				}
				break
			}
			// A hot-plugged NIC needs its driver, which boot-time
			// coldplug did not load when no NIC was present. The device
			// may reach the PCI bus only after a first look (ACPI
			// hot-plug is slow under TCG), so look again every second.
			if time.Since(loaded) >= time.Second {
				loadNewModules()
				loaded = time.Now()
				continue
			}
			if time.Now().After(deadline) {
				return out, &proto.Error{Message: fmt.Sprintf("net_config: no network interface with MAC %s appeared within %s", want.MAC, wait)}
			}
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return out, ctx.Err()
			}
		}
		out.Ifnames[i] = ifc.Name
		if want.Address == "" {
			continue
		}
		p, err := netip.ParsePrefix(want.Address)
		if err != nil || !p.Addr().Is4() {
			return out, &proto.Error{Message: fmt.Sprintf("net_config: bad address %q", want.Address)}
		}
		if err := setIPv4(ifc.Name, p); err != nil {
			return out, err
		}
	}
	if err := writeHosts(hostsFile, r.Hosts); err != nil {
		return out, err
	}
	if len(r.Hosts) > 0 {
		if err := ensureNsswitch(); err != nil {
			return out, err
		}
	}
	if err := setDefaultRoute(r.Gateway, r.PrevGateway); err != nil {
		return out, err
	}
	if len(r.DNS) > 0 {
		var sb strings.Builder
		for _, d := range r.DNS {
			fmt.Fprintf(&sb, "nameserver %s\n", d)
		}
		if err := os.WriteFile(resolvFile, []byte(sb.String()), 0o644); err != nil {
			return out, fmt.Errorf("net_config: %w", err)
		}
	}
	return out, nil
}

func interfaceByMAC(mac net.HardwareAddr) *net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for i := range ifs {
		if bytes.Equal(ifs[i].HardwareAddr, mac) {
			return &ifs[i]
		}
	}
	return nil
}

// loadNewModules loads the drivers of devices that appeared since boot.
func loadNewModules() {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return
	}
	_, _ = kmod.Coldplug("/sys", filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])))
}

// setIPv4 gives ifname the address p (replacing its primary IPv4 address)
// and brings it up.
func setIPv4(ifname string, p netip.Prefix) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_config: socket: %w", err)
	}
	defer unix.Close(fd)
	set := func(req uint, what string, addr netip.Addr) error {
		ifr, err := unix.NewIfreq(ifname)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(addr.AsSlice()); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, req, ifr); err != nil {
			return fmt.Errorf("net_config: %s %s of %s: %w", what, addr, ifname, err)
		}
		return nil
	}
	if err := set(unix.SIOCSIFADDR, "address", p.Addr()); err != nil {
		return err
	}
	mask := net.CIDRMask(p.Bits(), 32)
	if err := set(unix.SIOCSIFNETMASK, "netmask", netip.AddrFrom4([4]byte(mask))); err != nil {
		return err
	}
	bcast := p.Masked().Addr().As4()
	for i := range bcast {
		bcast[i] |= ^mask[i]
	}
	if err := set(unix.SIOCSIFBRDADDR, "broadcast", netip.AddrFrom4(bcast)); err != nil {
		return err
	}
	return linkUp(fd, ifname)
}

// setMAC gives ifname a new hardware address.
func setMAC(ifname string, mac net.HardwareAddr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_config: socket: %w", err)
	}
	defer unix.Close(fd)
	var ifr struct {
		name   [unix.IFNAMSIZ]byte
		family uint16
		data   [14]byte
		_      [8]byte
	}
	copy(ifr.name[:], ifname)
	ifr.family = unix.ARPHRD_ETHER
	copy(ifr.data[:], mac)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return fmt.Errorf("net_config: setting MAC %s on %s: %w", mac, ifname, e)
	}
	return nil
}

func linkUp(fd int, ifname string) error {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("net_config: flags of %s: %w", ifname, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("net_config: bringing %s up: %w", ifname, err)
	}
	return nil
}

// writeHosts replaces Provium's block of the hosts file; the rest is the
// guest's own and stays as it is. With no entries a file without our block
// is not touched (nor created).
func writeHosts(path string, entries []proto.HostEntry) error {
	old, err := os.ReadFile(path)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("net_config: %w", err)
	}
	var keep []string
	inBlock, hadBlock := false, false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		switch bare := strings.TrimSuffix(line, "\n"); {
		case bare == hostsBegin:
			inBlock, hadBlock = true, true
		case bare == hostsEnd:
			inBlock = false
		case !inBlock && line != "":
			keep = append(keep, line)
		}
	}
	if len(entries) == 0 && !hadBlock {
		return nil
	}
	if missing {
		keep = []string{"127.0.0.1 localhost\n"}
	}
	var sb strings.Builder
	for _, l := range keep {
		sb.WriteString(l)
	}
	if s := sb.String(); s != "" && !strings.HasSuffix(s, "\n") {
		sb.WriteString("\n")
	}
	if len(entries) > 0 {
		sb.WriteString(hostsBegin + "\n")
		for _, e := range entries {
			fmt.Fprintf(&sb, "%s %s\n", e.Address, e.Name)
		}
		sb.WriteString(hostsEnd + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("net_config: %w", err)
	}
	tmp := path + ".provium"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("net_config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("net_config: %w", err)
	}
	return nil
}

// ensureNsswitch makes name lookups consult the hosts file first when the
// guest has no nsswitch.conf (glibc's built-in default asks DNS first).
func ensureNsswitch() error {
	if _, err := os.Stat(nsswitchFile); err == nil {
		return nil
	}
	if err := os.WriteFile(nsswitchFile, []byte("hosts: files dns\n"), 0o644); err != nil {
		return fmt.Errorf("net_config: %w", err)
	}
	return nil
}

// rtentry is struct rtentry of <net/route.h> on 64-bit Linux.
type rtentry struct {
	pad1    uint64
	dst     unix.RawSockaddrInet4
	gateway unix.RawSockaddrInet4
	genmask unix.RawSockaddrInet4
	flags   uint16
	pad2    int16
	pad3    uint64
	pad4    uintptr
	metric  int16
	dev     uintptr
	mtu     uint64
	window  uint64
	irtt    uint16
}

// setDefaultRoute replaces every IPv4 default route by one via gw. With
// gw empty it removes only a default route via prev (the uplink's, which
// an earlier call set) and leaves the guest's own routes alone.
func setDefaultRoute(gw, prev string) error {
	if gw == "" && prev == "" {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_config: socket: %w", err)
	}
	defer unix.Close(fd)
	any4 := unix.RawSockaddrInet4{Family: unix.AF_INET}
	if gw == "" {
		a, err := parseGateway(prev)
		if err != nil {
			return err
		}
		// The kernel matches the gateway too, so another default route
		// stays (ESRCH: ours is gone already).
		rt := rtentry{dst: any4, genmask: any4, gateway: unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCDELRT, uintptr(unsafe.Pointer(&rt))); e != 0 && e != unix.ESRCH {
			return fmt.Errorf("net_config: remove default route via %s: %w", prev, e)
		}
		return nil
	}
	a, err := parseGateway(gw)
	if err != nil {
		return err
	}
	// Delete every default route there is (ESRCH: none left).
	for range 8 {
		rt := rtentry{dst: any4, genmask: any4, gateway: any4}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCDELRT, uintptr(unsafe.Pointer(&rt))); e != 0 {
			break
		}
	}
	rt := rtentry{dst: any4, genmask: any4, gateway: unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}, flags: unix.RTF_UP | unix.RTF_GATEWAY}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCADDRT, uintptr(unsafe.Pointer(&rt))); e != 0 {
		return fmt.Errorf("net_config: default route via %s: %w", gw, e)
	}
	return nil
}

func parseGateway(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, &proto.Error{Message: fmt.Sprintf("net_config: bad gateway %q", s)}
	}
	return a, nil
}
