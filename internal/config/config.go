// Package config loads provium.toml (20-cli-config.md §7): the [provium]
// settings, the profiles (inline and discovered through from_dir), their
// validation and path resolution, and the boot-time helpers that turn a
// profile into a kernel, a command line and a built artifact directory.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// FileName is the configuration file looked up in the working directory.
const FileName = "provium.toml"

// Messages for Config-level failures.
const (
	errNoProfiles     = "no profiles in %s"
	errUnknownProfile = "profile `%s` not found in provium.toml"
)

// Env looks up an environment variable, like os.LookupEnv. Passing it in
// keeps loading and directory resolution testable without touching the
// process environment.
type Env func(key string) (string, bool)

// lookup returns a variable's value when it is set and non-empty: an empty
// variable means "unset" for every setting Provium reads.
func (e Env) lookup(key string) (string, bool) {
	if e == nil {
		e = os.LookupEnv
	}
	v, ok := e(key)
	return v, ok && v != ""
}

// Config is a loaded, validated provium.toml.
type Config struct {
	// Path is the config file as it was named (for messages); Dir is the
	// absolute directory relative paths resolve against. Exists is false for
	// the empty configuration LoadDefault returns when there is no file.
	Path   string
	Dir    string
	Exists bool

	// [provium]. Paths are absolute. An empty *Key field means the key was
	// not set; use CacheDir, ScratchDir and Accel for effective values.
	Roots         []string
	CacheDirKey   string
	CacheMaxSize  uint64
	AccelKey      string
	ScratchDirKey string
	PSIThreshold  float64

	// Profiles by name.
	Profiles map[string]*Profile

	// Warnings are non-fatal findings (unknown keys), already formatted as
	// "warning: <path>: unknown key `<k>`"; the CLI prefixes "provium: ".
	Warnings []string

	env Env
}

// Defaults of [provium] (20-cli-config.md §7.2).
const (
	DefaultCacheMaxSize = 20 << 30
	DefaultPSIThreshold = 50.0
)

// Defaults of a profile (20-cli-config.md §7.3).
const (
	DefaultMemory           = 512 << 20
	DefaultCPUs             = 1
	DefaultAgentBootTimeout = 30 * time.Second
	DefaultGuestOS          = "linux"
	DefaultKernelBoot       = "auto"
	DefaultArch             = "x86_64"
	DefaultMachine          = "q35"
	// DefaultFirmware picks qboot when installed (fastest) for profiles that
	// name guest_os, SeaBIOS (upstream's) for the others; `seabios` is
	// needed by guests that suspend to RAM (qboot has no S3 resume path).
	DefaultFirmware = "auto"
)

// Disk is one entry of a profile's `disks`.
type Disk struct {
	Path     string // absolute
	ID       string
	ReadOnly bool
}

// Profile is one validated [profiles.<name>] (or from_dir) profile. Path
// fields are absolute with `{out}` expanded; empty means unset.
type Profile struct {
	Name   string
	Source string // file that defines it
	Dir    string // directory relative paths resolved against; build runs here
	Out    string // the `{out}` directory (created before the build, not at load)

	Kernel           string
	Root             string
	Initrd           string
	Cmdline          string
	CmdlineFile      string
	GuestOS          string // effective: DefaultGuestOS when the key is absent
	GuestOSNamed     bool   // the key is set (the implicit image counts as "linux")
	InjectAgent      bool
	AgentOverlayPath string
	AgentBootTimeout time.Duration
	Disks            []Disk
	Build            string // shell command, `{out}` expanded; "" = none
	BuildOut         string
	Memory           uint64 // bytes, a whole number of MiB
	CPUs             int
	KernelBoot       string // auto | pvh | bzimage
	Arch             string
	Machine          string // q35 | pc | microvm
	Firmware         string // auto | qboot | seabios
	// Implicit marks the default-image profile the configuration did not
	// declare (implicit.go).
	Implicit bool
}

// ProfileNames returns the profile names in bytewise order.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for n, p := range c.Profiles {
		if !p.Implicit {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Profile returns the named profile or an error naming it.
func (c *Config) Profile(name string) (*Profile, error) {
	p, ok := c.Profiles[name]
	if !ok {
		return nil, fmt.Errorf(errUnknownProfile, name)
	}
	return p, nil
}

// WrittenForUpstream says the profile names no guest_os, as every profile
// written for upstream Provium (which has no such key) does: such a profile
// gets upstream's defaults where ours differ (SeaBIOS for firmware "auto",
// a guest reboot that ends the VM; bridge addressing has its own rule in
// lab.DefaultAddressing).
func (p *Profile) WrittenForUpstream() bool { return !p.GuestOSNamed }

// NamedGuestOS is the guest_os profile name sets itself ("" when it
// sets none or is unknown). Bridge addressing defaults follow it, not the
// effective GuestOS: profiles written for upstream have no such key and
// get raw links there (docs/decisions.md "Following real suites").
func (c *Config) NamedGuestOS(name string) string {
	if p, ok := c.Profiles[name]; ok && p.GuestOSNamed {
		return p.GuestOS
	}
	return ""
}

// DefaultProfile is the profile used where one is optional: the first by
// bytewise-sorted name (20-cli-config.md §7.7).
func (c *Config) DefaultProfile() (*Profile, error) {
	names := c.ProfileNames()
	if len(names) == 0 {
		if p, ok := c.Profiles[ImplicitProfile]; ok {
			return p, nil
		}
		return nil, fmt.Errorf(errNoProfiles, c.Path)
	}
	return c.Profiles[names[0]], nil
}

// Load reads and validates the config file at path using the process
// environment. An explicitly named file that does not exist is a read error.
func Load(path string) (*Config, error) {
	return LoadEnv(path, os.LookupEnv)
}

// LoadEnv is Load with an explicit environment.
func LoadEnv(path string, env Env) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{Kind: ReadError, Path: path, Err: err}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Kind: ReadError, Path: path, Err: bareIOError(err)}
	}
	l := &loader{path: path, dir: filepath.Dir(abs), env: env}
	return l.load(data)
}

// LoadDefault loads <cwd>/provium.toml when it exists. When it does not, the
// result is an empty configuration rooted at cwd (no profiles, defaults
// everywhere) and no error, because running without a config file is normal.
func LoadDefault(cwd string) (*Config, error) {
	return LoadDefaultEnv(cwd, os.LookupEnv)
}

// LoadDefaultEnv is LoadDefault with an explicit environment.
func LoadDefaultEnv(cwd string, env Env) (*Config, error) {
	path := filepath.Join(cwd, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		dir, err := filepath.Abs(cwd)
		if err != nil {
			return nil, &Error{Kind: ReadError, Path: path, Err: err}
		}
		return emptyConfig(path, dir, env), nil
	}
	return LoadEnv(path, env)
}

func emptyConfig(path, dir string, env Env) *Config {
	return &Config{
		Path:         path,
		Dir:          dir,
		CacheMaxSize: DefaultCacheMaxSize,
		PSIThreshold: DefaultPSIThreshold,
		Profiles:     map[string]*Profile{},
		env:          env,
	}
}

// bareIOError drops the path an *fs.PathError repeats, because the message
// around it already names the file.
func bareIOError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
