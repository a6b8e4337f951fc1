package proto

// OpNetConfig (NetConfigReq → NetConfigResp) makes the guest's network
// match the host's bridges: it loads the drivers of NICs that appeared
// (hot-plug), waits for each NIC by MAC, sets the addresses asked for,
// replaces Provium's block of /etc/hosts and the default route and DNS of
// the uplink. A NIC without an Address is left alone (raw links); with no
// hosts entries and no gateway (addressing "none") the guest's files and
// routes are not touched at all.
const OpNetConfig = "net_config"

// NetIface is one NIC of the guest, found by its MAC.
type NetIface struct {
	MAC string `msgpack:"mac"`
	// Address is "10.64.0.2/24"; "" leaves the interface unconfigured.
	Address string `msgpack:"address,omitempty"`
	// Previous, when set, is the MAC the guest may still use for this NIC
	// (a restored snapshot of another VM): that interface is found by it
	// and given MAC.
	Previous string `msgpack:"previous,omitempty"`
}

// HostEntry is one /etc/hosts line.
type HostEntry struct {
	Address string `msgpack:"address"`
	Name    string `msgpack:"name"`
}

// NetConfigReq is the whole network configuration: every call replaces the
// previous one (hosts block, default route, resolver).
type NetConfigReq struct {
	Ifaces []NetIface  `msgpack:"ifaces"`
	Hosts  []HostEntry `msgpack:"hosts"`
	// Gateway is the default route's next hop: when set it replaces every
	// IPv4 default route. "" leaves the default routes alone, except one
	// via PrevGateway (the Gateway of an earlier call, an uplink since
	// disabled), which is removed. DNS is the resolver addresses written
	// to /etc/resolv.conf (none: left alone).
	Gateway     string   `msgpack:"gateway,omitempty"`
	PrevGateway string   `msgpack:"prev_gateway,omitempty"`
	DNS         []string `msgpack:"dns,omitempty"`
	// WaitMs bounds the wait for NICs to appear (hot-plug, driver load).
	WaitMs int64 `msgpack:"wait_ms,omitempty"`
}

// NetConfigResp names the guest interface of each requested NIC, in
// request order.
type NetConfigResp struct {
	Ifnames []string `msgpack:"ifnames"`
}
