package vmm

import (
	"fmt"
	"slices"
	"strings"
)

// Argv returns QEMU's full command line (argv[0] is the binary) for c. It is
// pure: same Config, same argv, nothing touched on disk. Apply WithDefaults
// first to get what Start runs.
//
// QEMU starts with -S (vCPUs stopped): Start attaches to the console socket
// before the guest can print its first byte, then sends `cont`.
func (c Config) Argv() []string {
	a := []string{c.QEMU}
	add := func(args ...string) { a = append(a, args...) }

	if c.Name != "" {
		add("-name", "guest="+optVal(c.Name))
	}
	add("-M", string(c.Machine))
	add("-nodefaults", "-no-user-config", "-nographic")
	if c.BIOS != "" {
		add("-bios", c.BIOS)
	}
	switch c.Accel {
	case AccelKVM:
		add("-accel", "kvm", "-cpu", "host")
	default:
		add("-accel", "tcg", "-cpu", "max")
	}

	// Guest RAM lives in a file so a snapshot can copy it while the guest is
	// stopped and a restore can map it copy-on-write (40 §5, fast path).
	memMiB := c.Memory / mib
	share := "on"
	if c.RAMPrivate {
		share = "off"
	}
	add("-m", fmt.Sprintf("%dM", memMiB),
		"-object", fmt.Sprintf("memory-backend-file,id=mem,mem-path=%s,size=%dM,share=%s", optVal(c.RAMPath()), memMiB, share),
		"-machine", "memory-backend=mem")
	add("-smp", fmt.Sprint(c.CPUs))

	if c.Kernel != "" {
		add("-kernel", c.Kernel)
	}
	if c.Initrd != "" {
		add("-initrd", c.Initrd)
	}
	if cmdline := c.KernelCmdline(); cmdline != "" {
		add("-append", cmdline)
	}

	// ttyS0: a listening socket feeds the live console (read/write); the
	// logfile keeps everything the guest printed, connected or not.
	add("-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off,logfile=%s,logappend=on",
		ConsoleChardev, optVal(c.ConsoleSocket()), optVal(c.ConsoleLog())),
		"-serial", "chardev:"+ConsoleChardev)

	l, _ := c.placement() // Validate reports a bad layout before Start
	add("-device", c.virtioDriver("serial")+",id=vserial0,max_ports=4"+l.serial,
		"-chardev", fmt.Sprintf("socket,id=agent,path=%s,server=on,wait=off", optVal(c.AgentSocket())),
		"-device", "virtserialport,bus=vserial0.0,chardev=agent,name="+agentPortName)
	if hasParam(c.Cmdline, consoleParamKey+"hvc") {
		add("-chardev", fmt.Sprintf("file,id=hvc0,path=%s", optVal(c.HVCLog())),
			"-device", "virtconsole,bus=vserial0.0,chardev=hvc0")
	}
	for i, p := range c.ExtraPorts {
		id := fmt.Sprintf("xport%d", i)
		add("-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", id, optVal(p.Socket)),
			"-device", fmt.Sprintf("virtserialport,bus=vserial0.0,chardev=%s,name=%s", id, optVal(p.Name)))
	}

	switch c.RNG {
	case RNGServed:
		add("-chardev", fmt.Sprintf("socket,id=rngsrc,path=%s,server=on,wait=off", optVal(c.RNGSocket())),
			"-object", "rng-egd,id=rng0,chardev=rngsrc")
	default:
		add("-object", "rng-random,id=rng0,filename="+defaultRNGFile)
	}
	add("-device", c.virtioDriver("rng")+",rng=rng0"+l.rng)

	// A panicking guest must stop, not silently reboot into a fresh state.
	add("-device", "pvpanic", "-action", "panic=shutdown")
	if c.GuestRebootStops {
		add("-action", "reboot="+rebootStop)
	}

	for i, p := range l.ports {
		// chassis numbers must be unique per root port; 0 is reserved.
		add("-device", fmt.Sprintf("pcie-root-port,id=%s,chassis=%d%s", p, i+1, l.portAt[i]))
	}
	for _, n := range c.NICs {
		add(nicArgs(n, c.virtioDriver("net"), l.at[n.ID])...)
	}
	for _, d := range c.Disks {
		add(diskArgs(d, c.virtioDriver("blk"), l.at[d.ID])...)
	}

	add("-qmp", fmt.Sprintf("unix:%s,server=on,wait=off", optVal(c.QMPSocket())))
	add("-S")
	if c.Incoming {
		add("-incoming", "defer")
	}
	return a
}

// String renders the argv for logs and error messages (shell-like quoting
// only where a value contains spaces).
func (c Config) String() string {
	argv := c.Argv()
	out := make([]string, len(argv))
	for i, s := range argv {
		if s == "" || strings.ContainsAny(s, " \t\"'") {
			s = fmt.Sprintf("%q", s)
		}
		out[i] = s
	}
	return strings.Join(out, " ")
}

// KernelCmdline is the cmdline passed with -append: the configured one with
// console=ttyS0 appended unless that exact token is there (the last
// console= becomes /dev/console, and ttyS0 is what Provium captures; other
// console= tokens stay, the kernel logs to each), and on microvm
// tsc_early_khz= when absent.
func (c Config) KernelCmdline() string {
	if c.Kernel == "" {
		return ""
	}
	cmdline := c.Cmdline
	if !slices.Contains(strings.Fields(cmdline), serialConsoleParam) {
		cmdline += " " + serialConsoleParam
	}
	if c.Machine == MachineMicroVM && c.TSCkHz > 0 && !hasParam(cmdline, "tsc_early_khz=") {
		cmdline += fmt.Sprintf(" tsc_early_khz=%d", c.TSCkHz)
	}
	return strings.TrimSpace(cmdline)
}

func hasParam(cmdline, prefix string) bool {
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// DeviceID is the QEMU id of the guest device of a NIC or disk (the netdev or
// block node keeps the bare ID).
func DeviceID(id string) string { return id + "-dev" }

// nicArgs/diskArgs share device naming with hot-plug (hotplug.go); at is
// the device's bus options (placement).
func nicArgs(n NIC, driver, at string) []string {
	return []string{
		"-netdev", fmt.Sprintf("stream,id=%s,server=%s,addr.type=unix,addr.path=%s", n.ID, onOff(n.Server), optVal(n.Socket)),
		"-device", fmt.Sprintf("%s,netdev=%s,mac=%s,id=%s%s", driver, n.ID, n.MAC, DeviceID(n.ID), at),
	}
}

// virtioDriver names a virtio device model for the machine's transport:
// PCI, or MMIO on microvm.
func (c Config) virtioDriver(dev string) string {
	if c.Machine == MachineMicroVM {
		return "virtio-" + dev + "-device"
	}
	return "virtio-" + dev + "-pci"
}

func diskArgs(d Disk, driver, at string) []string {
	ro := "off"
	if d.ReadOnly {
		ro = "on"
	}
	var file string
	if d.NBDSocket != "" {
		// cache=none: QEMU keeps no cache of its own, so what the guest
		// has not flushed is exactly what the NBD server holds.
		file = fmt.Sprintf("cache.direct=on,file.driver=nbd,file.server.type=unix,file.server.path=%s", optVal(d.NBDSocket))
	} else {
		file = fmt.Sprintf("file.driver=file,file.filename=%s", optVal(d.Path))
	}
	return []string{
		"-blockdev", fmt.Sprintf("driver=raw,node-name=%s,read-only=%s,%s", d.ID, ro, file),
		"-device", fmt.Sprintf("%s,drive=%s,id=%s%s%s", driver, d.ID, DeviceID(d.ID), serialOpt(d.Serial), at),
	}
}

func serialOpt(s string) string {
	if s == "" {
		return ""
	}
	return ",serial=" + optVal(s)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// optVal escapes a value for QEMU's key=value,… option syntax, where a
// literal comma is written as two.
func optVal(s string) string { return strings.ReplaceAll(s, ",", ",,") }
