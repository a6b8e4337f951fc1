package vmm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func baseConfig() Config {
	return Config{
		Name:    "a",
		QEMU:    "qemu-system-x86_64",
		Machine: MachineQ35,
		Accel:   AccelTCG,
		BIOS:    "/usr/share/qemu/qboot.rom",
		Memory:  256 << 20,
		CPUs:    2,
		Kernel:  "/k/vmlinux",
		Initrd:  "/k/initrd",
		Cmdline: "console=ttyS0 quiet",
		Scratch: "/tmp/p/run-1/m1",
	}
}

func TestArgvExact(t *testing.T) {
	want := []string{
		"qemu-system-x86_64",
		"-name", "guest=a",
		"-M", "q35",
		"-nodefaults", "-no-user-config", "-nographic",
		"-bios", "/usr/share/qemu/qboot.rom",
		"-accel", "tcg", "-cpu", "max",
		"-m", "256M",
		"-object", "memory-backend-file,id=mem,mem-path=/tmp/p/run-1/m1/ram,size=256M,share=on",
		"-machine", "memory-backend=mem",
		"-smp", "2",
		"-kernel", "/k/vmlinux",
		"-initrd", "/k/initrd",
		"-append", "console=ttyS0 quiet",
		"-chardev", "socket,id=console,path=/tmp/p/run-1/m1/console.sock,server=on,wait=off,logfile=/tmp/p/run-1/m1/console.log,logappend=on",
		"-serial", "chardev:console",
		"-device", "virtio-serial-pci,id=vserial0,max_ports=4,bus=pcie.0,addr=0x1",
		"-chardev", "socket,id=agent,path=/tmp/p/run-1/m1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,bus=vserial0.0,chardev=agent,name=org.provium.agent.0",
		"-object", "rng-random,id=rng0,filename=/dev/urandom",
		"-device", "virtio-rng-pci,rng=rng0,bus=pcie.0,addr=0x2",
		"-device", "pvpanic", "-action", "panic=shutdown",
		"-qmp", "unix:/tmp/p/run-1/m1/qmp.sock,server=on,wait=off",
		"-S",
	}
	got := baseConfig().Argv()
	if !slices.Equal(got, want) {
		t.Errorf("argv mismatch\ngot:  %q\nwant: %q", got, want)
	}
	if slices.Contains(got, "-no-reboot") {
		t.Error("argv has -no-reboot")
	}
}

// pairValue returns the value after the first occurrence of flag whose value
// has the given prefix (or any value when prefix is "").
func pairValue(argv []string, flag, prefix string) (string, bool) {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && strings.HasPrefix(argv[i+1], prefix) {
			return argv[i+1], true
		}
	}
	return "", false
}

// wantDevices reports each of want that is not a -device value of argv.
func wantDevices(t *testing.T, argv []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(argv, w) {
			t.Errorf("missing -device %q in %q", w, argv)
		}
	}
}

func TestArgvVariants(t *testing.T) {
	c := baseConfig()
	c.Accel = AccelKVM
	c.Machine = MachinePC
	c.BIOS = ""
	c.RAMFile = "/snap/ram"
	c.RAMPrivate = true
	c.Incoming = true
	c.RNG = RNGServed
	a := c.Argv()

	if v, _ := pairValue(a, "-accel", ""); v != "kvm" {
		t.Errorf("accel = %q", v)
	}
	if v, _ := pairValue(a, "-cpu", ""); v != "host" {
		t.Errorf("cpu = %q", v)
	}
	if v, _ := pairValue(a, "-M", ""); v != "pc" {
		t.Errorf("machine = %q", v)
	}
	if slices.Contains(a, "-bios") {
		t.Error("-bios given without a BIOS")
	}
	if v, _ := pairValue(a, "-object", "memory-backend-file"); v != "memory-backend-file,id=mem,mem-path=/snap/ram,size=256M,share=off" {
		t.Errorf("memory backend = %q", v)
	}
	if v, _ := pairValue(a, "-incoming", ""); v != "defer" {
		t.Errorf("incoming = %q", v)
	}
	if v, _ := pairValue(a, "-object", "rng-egd"); v != "rng-egd,id=rng0,chardev=rngsrc" {
		t.Errorf("rng backend = %q", v)
	}
	if v, _ := pairValue(a, "-chardev", "socket,id=rngsrc"); v != "socket,id=rngsrc,path=/tmp/p/run-1/m1/rng.sock,server=on,wait=off" {
		t.Errorf("rng chardev = %q", v)
	}
}

func TestArgvDevices(t *testing.T) {
	c := baseConfig()
	c.NICs = []NIC{{ID: "net0", Socket: "/s/net-lan.sock", MAC: "52:54:00:00:00:01"}}
	c.Disks = []Disk{
		{ID: "disk0", Path: "/d/a,b.img"},
		{ID: "disk1", NBDSocket: "/s/nbd1.sock", ReadOnly: true, Serial: "data,1"},
	}
	c.HotplugPorts = 2
	a := c.Argv()
	for flag, want := range map[string]string{
		"-netdev": "stream,id=net0,server=off,addr.type=unix,addr.path=/s/net-lan.sock",
	} {
		if v, _ := pairValue(a, flag, ""); v != want {
			t.Errorf("%s = %q, want %q", flag, v, want)
		}
	}
	// q35: the NIC on the root bus at 00:02.0 as upstream has it, a root
	// port per boot disk (so it can be unplugged), then the spare ones;
	// every PCI device at an explicit slot.
	wantDevices(t, a,
		"virtio-serial-pci,id=vserial0,max_ports=4,bus=pcie.0,addr=0x1",
		"virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,id=net0-dev,bus=pcie.0,addr=0x2",
		"virtio-rng-pci,rng=rng0,bus=pcie.0,addr=0x3",
		"pcie-root-port,id=hp0,chassis=1,bus=pcie.0,addr=0x4",
		"pcie-root-port,id=hp1,chassis=2,bus=pcie.0,addr=0x5",
		"pcie-root-port,id=hp2,chassis=3,bus=pcie.0,addr=0x6",
		"pcie-root-port,id=hp3,chassis=4,bus=pcie.0,addr=0x7",
		"virtio-blk-pci,drive=disk0,id=disk0-dev,bus=hp0",
		"virtio-blk-pci,drive=disk1,id=disk1-dev,serial=data,,1,bus=hp1",
	)
	if v, ok := pairValue(a, "-device", "pcie-root-port,id=hp4"); ok {
		t.Errorf("a root port beyond the disks and spares: %q", v)
	}
	// The comma in the file name is doubled, as QEMU's option syntax wants.
	if !slices.Contains(a, "driver=raw,node-name=disk0,read-only=off,file.driver=file,file.filename=/d/a,,b.img") {
		t.Errorf("plain disk blockdev missing in %q", a)
	}
	if !slices.Contains(a, "driver=raw,node-name=disk1,read-only=on,cache.direct=on,file.driver=nbd,file.server.type=unix,file.server.path=/s/nbd1.sock") {
		t.Errorf("nbd disk blockdev missing in %q", a)
	}

	// pc hot-plugs on its root bus: no ports; its slot 1 is the PIIX3, so
	// the NIC still comes first, at 00:02.0.
	c.Machine = MachinePC
	a = c.Argv()
	if v, ok := pairValue(a, "-device", "pcie-root-port"); ok {
		t.Errorf("pc has a root port: %q", v)
	}
	wantDevices(t, a,
		"virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,id=net0-dev,bus=pci.0,addr=0x2",
		"virtio-blk-pci,drive=disk0,id=disk0-dev,bus=pci.0,addr=0x3",
		"virtio-blk-pci,drive=disk1,id=disk1-dev,serial=data,,1,bus=pci.0,addr=0x4",
		"virtio-serial-pci,id=vserial0,max_ports=4,bus=pci.0,addr=0x5",
		"virtio-rng-pci,rng=rng0,bus=pci.0,addr=0x6",
	)
}

// Boot-time NICs take the root-bus slots from 2 in attach order, on both
// PC machines, and no two PCI devices ever share a slot.
func TestArgvNICSlots(t *testing.T) {
	for _, m := range []MachineType{MachineQ35, MachinePC} {
		c := baseConfig()
		c.Machine = m
		c.HotplugPorts = 4
		for i := range 3 {
			c.NICs = append(c.NICs, NIC{ID: fmt.Sprintf("net%d", i), Socket: "/s/n.sock", MAC: fmt.Sprintf("02:50:00:00:00:0%d", i)})
		}
		c.Disks = []Disk{{ID: "disk0", Path: "/d/a.img"}}
		a := c.Argv()
		slots := map[string]string{}
		for i := 0; i+1 < len(a); i++ {
			if a[i] != "-device" {
				continue
			}
			_, at, ok := strings.Cut(a[i+1], ",addr=")
			if !ok {
				continue
			}
			if other, dup := slots[at]; dup {
				t.Errorf("%s: %q and %q share slot %s", m, other, a[i+1], at)
			}
			slots[at] = a[i+1]
		}
		for i, want := range []string{"0x2", "0x3", "0x4"} {
			if dev := slots[want]; !strings.HasPrefix(dev, fmt.Sprintf("virtio-net-pci,netdev=net%d,", i)) {
				t.Errorf("%s: slot %s holds %q, want net%d", m, want, dev, i)
			}
		}
		if slots["0x1"] != "" && m == MachinePC {
			t.Errorf("pc: slot 1 (the PIIX3's) given to %q", slots["0x1"])
		}
	}
}

// A machine whose devices do not fit on the root bus is refused before
// QEMU is started, naming the counts and the way out.
func TestValidatePCISlots(t *testing.T) {
	c := baseConfig()
	c.HotplugPorts = 4
	// serial, 24 NICs, rng and 4 ports fill slots 1..0x1e exactly.
	for i := range 24 {
		c.NICs = append(c.NICs, NIC{ID: fmt.Sprintf("net%d", i), Socket: "/s/n.sock", MAC: "02:50:00:00:00:01"})
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("24 NICs and 4 spare ports fit: %v", err)
	}
	c.NICs = append(c.NICs, NIC{ID: "net24", Socket: "/s/n.sock", MAC: "02:50:00:00:00:01"})
	err := c.Validate()
	want := "vmm: 25 NICs, 0 disks and 4 root ports do not fit on the root PCI bus (they need slots up to 0x1f, the last is 0x1e): attach fewer devices or lower HotplugPorts"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestKernelCmdlineConsole(t *testing.T) {
	cases := map[string]string{
		"quiet":                      "quiet console=ttyS0",
		"":                           "console=ttyS0",
		"console=ttyS0 ro":           "console=ttyS0 ro",
		"ro console=ttyS0":           "ro console=ttyS0",
		"console=hvc0 ro":            "console=hvc0 ro console=ttyS0",
		"console=ttyS0,115200 ro":    "console=ttyS0,115200 ro console=ttyS0",
		"console=ttyS1":              "console=ttyS1 console=ttyS0",
		"xconsole=ttyS0":             "xconsole=ttyS0 console=ttyS0",
		"console=ttyS0 console=hvc0": "console=ttyS0 console=hvc0",
	}
	for in, want := range cases {
		c := baseConfig()
		c.Cmdline = in
		if got := c.KernelCmdline(); got != want {
			t.Errorf("KernelCmdline(%q) = %q, want %q", in, got, want)
		}
	}
	c := baseConfig()
	c.Cmdline = "console=hvc0"
	if !slices.Contains(c.Argv(), "virtconsole,bus=vserial0.0,chardev=hvc0") {
		t.Error("console=hvc0 without a virtconsole")
	}
	if slices.Contains(baseConfig().Argv(), "virtconsole,bus=vserial0.0,chardev=hvc0") {
		t.Error("virtconsole without console=hvc0")
	}
}

func TestValidate(t *testing.T) {
	if err := baseConfig().Validate(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"bad machine", func(c *Config) { c.Machine = "virt" }, `unknown machine "virt" (want q35, pc or microvm)`},
		{"odd memory", func(c *Config) { c.Memory = 1000 }, "not a positive multiple of 1 MiB"},
		{"no kernel", func(c *Config) { c.Kernel = "" }, "no kernel"},
		{"long scratch", func(c *Config) { c.Scratch = "/tmp/" + strings.Repeat("x", 100) }, "is too long"},
		{"bad disk", func(c *Config) { c.Disks = []Disk{{ID: "d"}} }, "exactly one of"},
		{"bad accel", func(c *Config) { c.Accel = "hvf" }, "unknown accel"},
	}
	for _, tc := range cases {
		c := baseConfig()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
	c := baseConfig()
	c.Kernel = ""
	c.Incoming = true
	if err := c.Validate(); err != nil {
		t.Errorf("incoming without kernel: %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.QEMU != DefaultQEMU || c.Machine != MachineQ35 || c.Accel != AccelTCG || c.Memory != DefaultMemory || c.CPUs != 1 || c.HotplugPorts != DefaultHotplugPorts {
		t.Errorf("defaults: %+v", c)
	}
}

func TestArgvMicroVM(t *testing.T) {
	c := baseConfig()
	c.Machine = MachineMicroVM
	c.BIOS = ""
	c.TSCkHz = 2596154
	c.HotplugPorts = 4
	c.Disks = []Disk{{ID: "disk0", Path: "/d/a.img"}}
	a := c.Argv()
	for _, want := range []string{
		"virtio-serial-device,id=vserial0,max_ports=4",
		"virtio-rng-device,rng=rng0",
		"virtio-blk-device,drive=disk0,id=disk0-dev",
	} {
		if !slices.Contains(a, want) {
			t.Errorf("missing %q in %q", want, a)
		}
	}
	if v, ok := pairValue(a, "-device", "pcie-root-port"); ok {
		t.Errorf("microvm has a root port: %q", v)
	}
	if v, _ := pairValue(a, "-append", ""); v != "console=ttyS0 quiet tsc_early_khz=2596154" {
		t.Errorf("cmdline %q", v)
	}
	c.Cmdline = "tsc_early_khz=1000"
	if got := c.KernelCmdline(); got != "tsc_early_khz=1000 console=ttyS0" {
		t.Errorf("given tsc_early_khz: %q", got)
	}
	d := Config{Machine: MachineMicroVM}.WithDefaults()
	if d.BIOS != "" {
		t.Errorf("microvm got BIOS %q; it brings its own", d.BIOS)
	}
	if d.TSCkHz <= 0 {
		t.Errorf("no host TSC frequency found: %d", d.TSCkHz)
	}
}

func TestArgvExtraPorts(t *testing.T) {
	c := baseConfig()
	c.ExtraPorts = []SerialPort{
		{Name: "org.qemu.guest_agent.0", Socket: "/tmp/p/run-1/m1/port0.sock"},
		{Name: "b,c", Socket: "/s/x,y.sock"},
	}
	a := c.Argv()
	// The new ports follow the agent's, on the same controller; ids and
	// values with commas are escaped as QEMU's option syntax wants.
	want := []string{
		"-device", "virtserialport,bus=vserial0.0,chardev=agent,name=org.provium.agent.0",
		"-chardev", "socket,id=xport0,path=/tmp/p/run-1/m1/port0.sock,server=on,wait=off",
		"-device", "virtserialport,bus=vserial0.0,chardev=xport0,name=org.qemu.guest_agent.0",
		"-chardev", "socket,id=xport1,path=/s/x,,y.sock,server=on,wait=off",
		"-device", "virtserialport,bus=vserial0.0,chardev=xport1,name=b,,c",
	}
	i := slices.Index(a, want[1])
	if i < 1 || len(a) < i-1+len(want) || !slices.Equal(a[i-1:i-1+len(want)], want) {
		t.Errorf("extra ports not after the agent's port:\ngot:  %q\nwant: %q", a, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}

	// Without extra ports nothing changes (TestArgvExact pins the argv).
	c.ExtraPorts = nil
	if v, ok := pairValue(c.Argv(), "-chardev", "socket,id=xport"); ok {
		t.Errorf("unexpected extra port %q", v)
	}

	for _, tc := range []struct {
		ports []SerialPort
		want  string
	}{
		{[]SerialPort{{Name: "a", Socket: "/s/a"}, {Name: "b", Socket: "/s/b"}, {Name: "c", Socket: "/s/c"}}, "3 extra virtio-serial ports (max 2)"},
		{[]SerialPort{{Name: "a"}}, "needs a name and a socket"},
		{[]SerialPort{{Name: "org.provium.agent.0", Socket: "/s/a"}}, "used twice"},
		{[]SerialPort{{Name: "a", Socket: "/s/a"}, {Name: "a", Socket: "/s/b"}}, "used twice"},
		{[]SerialPort{{Name: "a", Socket: "/tmp/" + strings.Repeat("x", 110)}}, "is too long"},
	} {
		c := baseConfig()
		c.ExtraPorts = tc.ports
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want error containing %q", tc.ports, err, tc.want)
		}
	}
}

// A restore pins devices where the snapshotted machine had them: the port
// count is fixed, pinned devices keep their ports, the other disks fill the
// first free ones, unpinned NICs stay on the root bus (from 00:02.0), and
// the unused ports stay free for hot-plug.
func TestPlacementPinsRootPorts(t *testing.T) {
	c := baseConfig()
	c.RootPorts = 6
	c.NICs = []NIC{
		{ID: "net0", Socket: "/s/a.sock", MAC: "02:50:00:00:00:01"},
		{ID: "net1", Socket: "/s/b.sock", MAC: "02:50:00:00:00:02", Port: "hp4"},
		{ID: "net2", Socket: "/s/c.sock", MAC: "02:50:00:00:00:03"},
	}
	c.Disks = []Disk{{ID: "disk0", Path: "/d/a.img", Port: "hp0"}, {ID: "disk1", Path: "/d/b.img"}}
	a := c.Argv()
	wantDevices(t, a,
		"virtio-net-pci,netdev=net0,mac=02:50:00:00:00:01,id=net0-dev,bus=pcie.0,addr=0x2",
		"virtio-net-pci,netdev=net2,mac=02:50:00:00:00:03,id=net2-dev,bus=pcie.0,addr=0x3",
		"virtio-rng-pci,rng=rng0,bus=pcie.0,addr=0x4",
		"pcie-root-port,id=hp0,chassis=1,bus=pcie.0,addr=0x5",
		"pcie-root-port,id=hp5,chassis=6,bus=pcie.0,addr=0xa",
		"virtio-net-pci,netdev=net1,mac=02:50:00:00:00:02,id=net1-dev,bus=hp4",
		"virtio-blk-pci,drive=disk0,id=disk0-dev,bus=hp0",
		"virtio-blk-pci,drive=disk1,id=disk1-dev,bus=hp1",
	)
	if v, ok := pairValue(a, "-device", "pcie-root-port,id=hp6,"); ok {
		t.Errorf("more root ports than RootPorts: %q", v)
	}
	l, err := c.placement()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.free, []string{"hp2", "hp3", "hp5"}) {
		t.Errorf("free ports %v, want [hp2 hp3 hp5]", l.free)
	}

	c.Disks[0].Port = "hp4"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `root port "hp4" holds another device`) {
		t.Errorf("two devices on one port: %v", err)
	}
	c.Disks[0].Port = "hp9"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `no root port "hp9" (the machine has 6)`) {
		t.Errorf("a port beyond RootPorts: %v", err)
	}
	c.Disks[0].Port = ""
	c.NICs[1].Port = "hp1"
	c.RootPorts = 2
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `vmm: device "disk1": no root port left (the machine has 2)`) {
		t.Errorf("more devices than ports: %v", err)
	}
	// Without RootPorts a pinned NIC and each disk count a port besides
	// the spare ones.
	c.RootPorts = 0
	c.HotplugPorts = 1
	if l, err := c.placement(); err != nil || len(l.ports) != 4 {
		t.Errorf("ports %v (%v), want 4: net1's, two disks', one spare", l.ports, err)
	}
}

// GuestRebootStops is upstream's -no-reboot, spelt as the action that
// set-action can lift for a host reset; without it QEMU keeps its default.
func TestArgvGuestRebootStops(t *testing.T) {
	c := baseConfig()
	if slices.Contains(c.Argv(), "reboot=shutdown") {
		t.Error("reboot=shutdown without GuestRebootStops")
	}
	c.GuestRebootStops = true
	a := c.Argv()
	if v, ok := pairValue(a, "-action", "reboot="); !ok || v != "reboot=shutdown" {
		t.Errorf("argv %q lacks -action reboot=shutdown", a)
	}
	if slices.Contains(a, "-no-reboot") {
		t.Error("argv has -no-reboot, which no set-action can lift")
	}
}
