package vmm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Hot-plug of NICs and disks on a running machine. On q35 a hot-plugged
// device goes into a spare PCIe root port (Config.HotplugPorts of them),
// because q35's root bus cannot hot-plug; boot-time disks have root ports
// of their own too, so they can be unplugged, while boot-time NICs sit on
// the root bus where upstream puts them (pci.go) and cannot. pc plugs into
// its root bus. The guest kernel's ACPI hot-plug handles both, no guest
// userspace involved.

type deviceKind int

const (
	kindNIC deviceKind = iota
	kindDisk
)

type plugged struct {
	kind deviceKind
	port string // "" on pc
}

// devices is the machine's hot-plug bookkeeping, guarded by Machine.mu.
type devices struct {
	byID      map[string]plugged
	rootPorts int
	freePorts []string
	deleted   map[string]chan struct{} // device id → closed on DEVICE_DELETED
}

func newDevices(c Config) devices {
	d := devices{byID: map[string]plugged{}, deleted: map[string]chan struct{}{}}
	l, _ := c.placement() // Start validated it
	for _, n := range c.NICs {
		d.byID[n.ID] = plugged{kindNIC, l.of[n.ID]}
	}
	for _, k := range c.Disks {
		d.byID[k.ID] = plugged{kindDisk, l.of[k.ID]}
	}
	d.rootPorts = len(l.ports)
	d.freePorts = l.free
	return d
}

// Placement is where the machine's devices sit now: how many q35 root
// ports it has and the root port of each NIC and disk, by ID (boot-time
// and hot-plugged alike). A restore passes both back (Config.RootPorts,
// NIC.Port, Disk.Port) so that the saved device state finds its devices.
// Off q35 there are no ports.
func (m *Machine) Placement() (rootPorts int, ports map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ports = map[string]string{}
	for id, p := range m.devs.byID {
		if p.port != "" {
			ports[id] = p.port
		}
	}
	return m.devs.rootPorts, ports
}

// ErrNoHotplug is returned by AttachNIC/AttachDisk/Detach on a microvm.
var ErrNoHotplug = errors.New("microvm machines cannot hot-plug NICs or disks (no PCI bus)")

// reserve claims an id and, on q35, a free root port.
func (m *Machine) reserve(id string, kind deviceKind) (string, error) {
	if m.cfg.Machine == MachineMicroVM {
		return "", fmt.Errorf("vmm: %s: attaching %s: %w", m.cfg.Name, id, ErrNoHotplug)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.devs.byID[id]; dup {
		return "", fmt.Errorf("vmm: %s: device %q already attached", m.cfg.Name, id)
	}
	port := ""
	if m.cfg.Machine == MachineQ35 {
		if len(m.devs.freePorts) == 0 {
			return "", fmt.Errorf("vmm: %s: no free hot-plug port (HotplugPorts=%d)", m.cfg.Name, m.cfg.HotplugPorts)
		}
		port, m.devs.freePorts = m.devs.freePorts[0], m.devs.freePorts[1:]
	}
	m.devs.byID[id] = plugged{kind, port}
	return port, nil
}

func (m *Machine) release(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.devs.byID[id]; ok {
		delete(m.devs.byID, id)
		if p.port != "" {
			m.devs.freePorts = append(m.devs.freePorts, p.port)
		}
	}
}

func withBus(args map[string]any, port string) map[string]any {
	if port != "" {
		args["bus"] = port
	}
	return args
}

// AttachDisk hot-plugs a virtio-blk disk.
func (m *Machine) AttachDisk(ctx context.Context, d Disk) error {
	if (d.Path == "") == (d.NBDSocket == "") {
		return fmt.Errorf("vmm: disk %q needs exactly one of a path or an NBD socket", d.ID)
	}
	port, err := m.reserve(d.ID, kindDisk)
	if err != nil {
		return err
	}
	file := map[string]any{"driver": "file", "filename": d.Path}
	node := map[string]any{"driver": "raw", "node-name": d.ID, "read-only": d.ReadOnly, "file": file}
	if d.NBDSocket != "" {
		node["file"] = map[string]any{"driver": "nbd", "server": map[string]any{"type": "unix", "path": d.NBDSocket}}
		node["cache"] = map[string]any{"direct": true}
	}
	if _, err := m.qmp.Execute(ctx, "blockdev-add", node); err != nil {
		m.release(d.ID)
		return fmt.Errorf("vmm: %s: attaching disk %s: %w", m.cfg.Name, d.ID, err)
	}
	dev := withBus(map[string]any{"driver": "virtio-blk-pci", "drive": d.ID, "id": DeviceID(d.ID)}, port)
	if d.Serial != "" {
		dev["serial"] = d.Serial
	}
	if _, err := m.qmp.Execute(ctx, "device_add", dev); err != nil {
		_, _ = m.qmp.Execute(ctx, "blockdev-del", map[string]any{"node-name": d.ID})
		m.release(d.ID)
		return fmt.Errorf("vmm: %s: attaching disk %s: %w", m.cfg.Name, d.ID, err)
	}
	return nil
}

// AttachNIC hot-plugs a virtio-net card connected to n.Socket.
func (m *Machine) AttachNIC(ctx context.Context, n NIC) error {
	port, err := m.reserve(n.ID, kindNIC)
	if err != nil {
		return err
	}
	netdev := map[string]any{"type": "stream", "id": n.ID, "server": false,
		"addr": map[string]any{"type": "unix", "path": n.Socket}}
	if _, err := m.qmp.Execute(ctx, "netdev_add", netdev); err != nil {
		m.release(n.ID)
		return fmt.Errorf("vmm: %s: attaching nic %s: %w", m.cfg.Name, n.ID, err)
	}
	dev := withBus(map[string]any{"driver": "virtio-net-pci", "netdev": n.ID, "mac": n.MAC, "id": DeviceID(n.ID)}, port)
	if _, err := m.qmp.Execute(ctx, "device_add", dev); err != nil {
		_, _ = m.qmp.Execute(ctx, "netdev_del", map[string]any{"id": n.ID})
		m.release(n.ID)
		return fmt.Errorf("vmm: %s: attaching nic %s: %w", m.cfg.Name, n.ID, err)
	}
	return nil
}

// Detach unplugs a NIC or disk (boot-time or hot-plugged) and waits until
// the guest has released it, then removes its backend. The guest must
// cooperate (ACPI eject); ctx bounds the wait.
func (m *Machine) Detach(ctx context.Context, id string) error {
	if m.cfg.Machine == MachineMicroVM {
		return fmt.Errorf("vmm: %s: detaching %s: %w", m.cfg.Name, id, ErrNoHotplug)
	}
	m.mu.Lock()
	p, ok := m.devs.byID[id]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("vmm: %s: no device %q attached", m.cfg.Name, id)
	}
	if m.cfg.Machine == MachineQ35 && p.port == "" {
		m.mu.Unlock()
		return fmt.Errorf("vmm: %s: device %q is on q35's root bus, which cannot unplug", m.cfg.Name, id)
	}
	gone := make(chan struct{})
	m.devs.deleted[DeviceID(id)] = gone
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.devs.deleted, DeviceID(id))
		m.mu.Unlock()
	}()

	if _, err := m.qmp.Execute(ctx, "device_del", map[string]any{"id": DeviceID(id)}); err != nil {
		return fmt.Errorf("vmm: %s: detaching %s: %w", m.cfg.Name, id, err)
	}
	select {
	case <-gone:
	case <-m.exited:
		return fmt.Errorf("vmm: %s: detaching %s: qemu exited", m.cfg.Name, id)
	case <-ctx.Done():
		return fmt.Errorf("vmm: %s: detaching %s: guest did not release the device: %w", m.cfg.Name, id, ctx.Err())
	}
	var err error
	switch p.kind {
	case kindDisk:
		_, err = m.qmp.Execute(ctx, "blockdev-del", map[string]any{"node-name": id})
	case kindNIC:
		_, err = m.qmp.Execute(ctx, "netdev_del", map[string]any{"id": id})
	}
	m.release(id)
	if err != nil {
		return fmt.Errorf("vmm: %s: detaching %s: removing backend: %w", m.cfg.Name, id, err)
	}
	return nil
}

// SetLink sets a NIC's carrier as the guest sees it.
func (m *Machine) SetLink(ctx context.Context, id string, up bool) error {
	if _, err := m.qmp.Execute(ctx, "set_link", map[string]any{"name": id, "up": up}); err != nil {
		return fmt.Errorf("vmm: %s: set link of %s: %w", m.cfg.Name, id, err)
	}
	return nil
}

// deviceDeleted is called by watchEvents for DEVICE_DELETED.
func (m *Machine) deviceDeleted(data json.RawMessage) {
	var d struct {
		Device string `json:"device"`
	}
	if json.Unmarshal(data, &d) != nil || d.Device == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.devs.deleted[d.Device]; ok {
		close(ch)
		delete(m.devs.deleted, d.Device)
	}
}
