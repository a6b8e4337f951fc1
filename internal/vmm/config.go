package vmm

import (
	"fmt"
	"os"
	"path/filepath"
)

// MachineType is QEMU's machine model.
type MachineType string

const (
	MachineQ35 MachineType = "q35"
	MachinePC  MachineType = "pc"
	// MachineMicroVM boots faster (no PCI, virtio-mmio devices) but cannot
	// hot-plug.
	MachineMicroVM MachineType = "microvm"
)

// Accel is the accelerator QEMU uses; internal/accel decides which.
type Accel string

const (
	AccelKVM Accel = "kvm"
	AccelTCG Accel = "tcg"
)

// Defaults used by Config.WithDefaults.
const (
	DefaultQEMU    = "qemu-system-x86_64"
	DefaultQboot   = "/usr/share/qemu/qboot.rom"
	DefaultMemory  = 256 << 20
	DefaultMachine = MachineQ35
	// DefaultHotplugPorts: enough for a few attach() calls per VM; each
	// port costs the guest one PCI bridge to enumerate.
	DefaultHotplugPorts = 4
	mib                 = 1 << 20
	unixPathMax         = 108 // sun_path, including the terminating NUL
	agentPortName       = "org.provium.agent.0"
	defaultRNGFile      = "/dev/urandom"
	consoleParamKey     = "console="
	serialConsoleParam  = consoleParamKey + "ttyS0"
)

// RNGSource says what backs the guest's virtio-rng device.
type RNGSource int

const (
	// RNGHost feeds the guest from the host's /dev/urandom (unseeded VMs).
	RNGHost RNGSource = iota
	// RNGServed makes QEMU listen on <scratch>/rng.sock for an EGD-protocol
	// peer; Provium connects and answers with a seed-derived stream
	// (ServeEGD), so a seeded guest's /dev/hwrng is reproducible. QEMU
	// listens (rather than connects) so nothing must exist before QEMU starts,
	// exactly like the agent and console sockets.
	RNGServed
)

// NIC is a network card whose frames go to a unix stream socket (the
// user-space switch of internal/netsim listens on it).
type NIC struct {
	ID     string // QEMU id, unique per machine ("net0")
	Socket string // the switch port's unix socket
	MAC    string // "52:54:00:xx:xx:xx"
	// Server makes QEMU listen on Socket itself, for another QEMU to
	// connect to: two guests joined directly, without a switch (the B6
	// baseline).
	Server bool
	// Port puts the card in a q35 root port ("hp2"), as a restore must for
	// a card that was hot-plugged there; "" puts it on the root bus, in the
	// next slot (pci.go). Ignored on pc and microvm.
	Port string
}

// Disk is a virtio-blk disk: a raw image file or, when NBDSocket is set, an
// NBD export served by internal/nbd (mediated disk).
type Disk struct {
	ID        string // QEMU node name, unique per machine ("disk0")
	Path      string // raw image file (plain disks)
	NBDSocket string // NBD unix socket (mediated disks); excludes Path
	ReadOnly  bool
	// Serial is the virtio serial the guest reads from
	// /sys/block/vdX/serial (the disk's id); virtio-blk keeps 20 bytes.
	Serial string
	// Port pins the disk to a q35 root port ("hp2"), as a restore must to
	// put it where the snapshotted machine had it; "" takes the next root
	// port in order. Ignored on pc and microvm.
	Port string
}

// SerialPort is an extra virtio-serial port beside the agent's, backed by a
// unix socket QEMU listens on (server=on,wait=off, like the agent's): the
// guest sees a port named Name (/sys/class/virtio-ports/*/name), the host
// connects to Socket. Benchmarks use one for qemu-guest-agent
// ("org.qemu.guest_agent.0").
type SerialPort struct {
	Name   string
	Socket string
}

// MaxExtraPorts is how many ExtraPorts fit on the virtio-serial controller
// (max_ports=4): port 0 is reserved for a console, the agent takes one.
const MaxExtraPorts = 2

// Config describes one QEMU machine. It is plain data: Argv turns it into a
// command line without side effects.
type Config struct {
	Name    string // guest name; shown in `ps` and QEMU's messages
	QEMU    string // binary; default DefaultQEMU (looked up on PATH)
	Machine MachineType
	Accel   Accel
	BIOS    string // firmware; WithDefaults sets qboot when installed
	Memory  int64  // bytes, a multiple of 1 MiB
	CPUs    int

	Kernel  string
	Initrd  string // optional
	Cmdline string

	// Scratch is this machine's private directory (sockets, RAM file,
	// logs). It must be short: unix socket paths are limited to 107 bytes.
	Scratch string

	// RAMFile overrides <scratch>/ram, e.g. to map a snapshot's RAM on
	// restore; RAMPrivate maps it copy-on-write (share=off) so the file stays
	// pristine.
	RAMFile    string
	RAMPrivate bool

	RNG   RNGSource
	NICs  []NIC
	Disks []Disk

	// ExtraPorts are additional virtio-serial ports on the agent's
	// controller (at most MaxExtraPorts). Empty: only the agent's port (and
	// hvc0 when the cmdline names it), as before.
	ExtraPorts []SerialPort

	// HotplugPorts is how many spare PCIe root ports a q35 machine gets for
	// devices attached while it runs (q35's root bus cannot hot-plug; pc's
	// can, so pc ignores it). 0 means DefaultHotplugPorts, negative none.
	// Boot-time disks get root ports of their own too, so that they can be
	// detached like hot-plugged ones; boot-time NICs sit on the root bus
	// (pci.go).
	HotplugPorts int

	// RootPorts, when positive, is the exact number of q35 root ports
	// (hp0, hp1, …) instead of one per device plus HotplugPorts: a
	// restore reproduces the snapshotted machine's PCI layout with it,
	// including ports left by devices hot-plugged or detached since boot.
	RootPorts int

	// TSCkHz is passed to a microvm guest as tsc_early_khz=: without a PIT
	// to calibrate against, the kernel otherwise hangs calibrating the TSC.
	// WithDefaults takes the host's frequency.
	TSCkHz int

	// Incoming starts QEMU with `-incoming defer`: it waits for
	// migrate-incoming (restore) instead of booting.
	Incoming bool

	// OnGuestReset, when set, is called (from the machine's event goroutine;
	// it must not block) each time the guest reboots itself and keeps
	// running. A reset caused by a kernel panic is not a reboot: the machine
	// is stopped and its exit reports ExitGuestPanic.
	OnGuestReset func(reason string)

	// GuestRebootStops makes a reset the guest asks for (reboot, sysrq b,
	// a triple fault) end QEMU as upstream Provium's -no-reboot does: the
	// exit is ExitGuestReboot and OnGuestReset is not called. SystemReset
	// lifts the rule for the host's own reset until ResetDone (argv.go
	// -action reboot=shutdown, QMP set-action).
	GuestRebootStops bool
}

// WithDefaults fills unset fields; Start applies it, and callers that want to
// print the exact argv Start will run apply it too.
func (c Config) WithDefaults() Config {
	if c.QEMU == "" {
		c.QEMU = DefaultQEMU
	}
	if c.Machine == "" {
		c.Machine = DefaultMachine
	}
	if c.Accel == "" {
		c.Accel = AccelTCG
	}
	// microvm brings its own qboot build (bios-microvm.bin).
	if c.BIOS == "" && c.Machine != MachineMicroVM {
		if _, err := os.Stat(DefaultQboot); err == nil {
			c.BIOS = DefaultQboot
		}
	}
	if c.Machine == MachineMicroVM && c.TSCkHz == 0 {
		c.TSCkHz = hostTSCkHz()
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if c.HotplugPorts == 0 {
		c.HotplugPorts = DefaultHotplugPorts
	}
	return c
}

// Validate reports a configuration QEMU would reject or that Provium cannot
// drive, before any process is started.
func (c Config) Validate() error {
	switch c.Machine {
	case MachineQ35, MachinePC, MachineMicroVM:
	default:
		return fmt.Errorf("vmm: unknown machine %q (want q35, pc or microvm)", c.Machine)
	}
	if c.Accel != AccelKVM && c.Accel != AccelTCG {
		return fmt.Errorf("vmm: unknown accel %q (want kvm or tcg)", c.Accel)
	}
	if c.Memory <= 0 || c.Memory%mib != 0 {
		return fmt.Errorf("vmm: memory %d bytes is not a positive multiple of 1 MiB", c.Memory)
	}
	if c.CPUs <= 0 {
		return fmt.Errorf("vmm: cpus %d must be positive", c.CPUs)
	}
	if c.Kernel == "" && !c.Incoming {
		return fmt.Errorf("vmm: no kernel")
	}
	if c.Scratch == "" {
		return fmt.Errorf("vmm: no scratch directory")
	}
	for _, p := range c.socketPaths() {
		if len(p) >= unixPathMax {
			return fmt.Errorf("vmm: socket path %s is too long (%d bytes, max %d): use a shorter scratch directory", p, len(p), unixPathMax-1)
		}
	}
	for _, d := range c.Disks {
		if (d.Path == "") == (d.NBDSocket == "") {
			return fmt.Errorf("vmm: disk %q needs exactly one of a path or an NBD socket", d.ID)
		}
	}
	if _, err := c.placement(); err != nil {
		return err
	}
	if len(c.ExtraPorts) > MaxExtraPorts {
		return fmt.Errorf("vmm: %d extra virtio-serial ports (max %d)", len(c.ExtraPorts), MaxExtraPorts)
	}
	seen := map[string]bool{agentPortName: true}
	for _, p := range c.ExtraPorts {
		if p.Name == "" || p.Socket == "" {
			return fmt.Errorf("vmm: extra virtio-serial port %q needs a name and a socket", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("vmm: virtio-serial port name %q used twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

func (c Config) socketPaths() []string {
	ps := []string{c.QMPSocket(), c.ConsoleSocket(), c.AgentSocket(), c.RNGSocket()}
	for _, n := range c.NICs {
		ps = append(ps, n.Socket)
	}
	for _, d := range c.Disks {
		if d.NBDSocket != "" {
			ps = append(ps, d.NBDSocket)
		}
	}
	for _, p := range c.ExtraPorts {
		ps = append(ps, p.Socket)
	}
	return ps
}

// Paths inside the scratch directory. They are part of the contract with the
// rest of Provium (the agent client dials AgentSocket, the RNG server
// dials RNGSocket).
func (c Config) QMPSocket() string     { return filepath.Join(c.Scratch, "qmp.sock") }
func (c Config) ConsoleSocket() string { return filepath.Join(c.Scratch, "console.sock") }
func (c Config) ConsoleLog() string    { return filepath.Join(c.Scratch, "console.log") }
func (c Config) HVCLog() string        { return filepath.Join(c.Scratch, "hvc0.log") }
func (c Config) AgentSocket() string   { return filepath.Join(c.Scratch, "agent.sock") }
func (c Config) RNGSocket() string     { return filepath.Join(c.Scratch, "rng.sock") }
func (c Config) StderrFile() string    { return filepath.Join(c.Scratch, "qemu.stderr") }

// RAMPath is the file backing guest memory.
func (c Config) RAMPath() string {
	if c.RAMFile != "" {
		return c.RAMFile
	}
	return filepath.Join(c.Scratch, "ram")
}
