package config

// ImplicitProfile is the profile a configuration without one of that name
// still offers: the default Linux image (20-cli-config.md §6 image build),
// built on first use (zero-config start).
const ImplicitProfile = "linux"

// WithImplicitLinux adds profile `linux` backed by the default image in
// dir (kernel vmlinux, initrd.cpio.gz, cmdline) unless the configuration
// declares one. It is marked Implicit: ProfileNames leaves it out (fixture
// keys, the default profile and messages list declared profiles only),
// HasProfile and Profile find it, and the caller builds the image before
// its first boot.
func (c *Config) WithImplicitLinux(kernel, initrd, cmdline string) {
	if _, ok := c.Profiles[ImplicitProfile]; ok {
		return
	}
	c.Profiles[ImplicitProfile] = &Profile{
		Name:             ImplicitProfile,
		Source:           "(default image)",
		Dir:              c.Dir,
		Kernel:           kernel,
		Initrd:           initrd,
		Cmdline:          cmdline,
		GuestOS:          DefaultGuestOS,
		GuestOSNamed:     true, // our image; its printed block names it too
		InjectAgent:      true,
		AgentBootTimeout: DefaultAgentBootTimeout,
		Memory:           DefaultMemory,
		CPUs:             DefaultCPUs,
		KernelBoot:       DefaultKernelBoot,
		Arch:             DefaultArch,
		Machine:          DefaultMachine,
		Firmware:         DefaultFirmware,
		Implicit:         true,
	}
}

// HasProfile reports whether name can be booted: declared or implicit.
func (c *Config) HasProfile(name string) bool {
	_, ok := c.Profiles[name]
	return ok
}
