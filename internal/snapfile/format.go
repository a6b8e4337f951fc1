// Package snapfile reads and writes Provium's single-file VM snapshot
// (40-guest-and-infra.md §5, 10-lua-api.md §6.1): a fixed header, a JSON
// manifest, then the members in a fixed order — owned disk images, the RAM
// file (fast path only), and QEMU's migration stream last, running to EOF.
//
// The layout is strictly sequential so that a snapshot can be written from
// and restored into pipes: a zstd-compressed cache entry (30-runtime.md A8)
// is decoded on the fly, disks and RAM land sparsely in files and the
// migration stream is piped straight into QEMU's incoming descriptor.
package snapfile

import (
	"errors"
	"fmt"
	"slices"
)

// FormatVersion is the snapshot file format version. It is part of every
// fixture key (30-runtime.md A5 item 8), so bumping it invalidates the cache.
//
// 2: the virtio-serial controller has max_ports=4 (device state differs).
const FormatVersion = 2

// Magic opens every raw snapshot file.
const Magic = "PRVMSNAP"

// zstdMagic is the little-endian frame magic 0xFD2FB528 of a zstd stream.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Member names with a fixed meaning; any other name is a disk image.
const (
	MemberRAM   = "ram"
	MemberState = "state"
)

// headerLen is magic + be32 format version + be32 manifest length.
const headerLen = len(Magic) + 4 + 4

// maxManifest bounds the manifest so that a corrupt length field cannot make
// a reader allocate gigabytes.
const maxManifest = 16 << 20

// Manifest describes everything needed to recreate the snapshotted VM.
type Manifest struct {
	// VMName is the snapshotted VM's name: a vm fixture restores under it.
	VMName         string   `json:"vm_name,omitempty"`
	Profile        string   `json:"profile"`
	MemoryBytes    uint64   `json:"memory_bytes"`
	CPUs           int      `json:"cpus"`
	Cmdline        string   `json:"cmdline"`
	Kernel         Identity `json:"kernel"`
	Initrd         Identity `json:"initrd"`
	Disks          []Disk   `json:"disks"`
	NICs           []NIC    `json:"nics"`
	Devices        []string `json:"devices"`
	TimeControlled bool     `json:"time_controlled"`
	// HasRAM is true for fast-path snapshots, whose RAM travels as the
	// `ram` member instead of inside the migration stream.
	HasRAM bool `json:"has_ram"`
	// RootPorts is the number of q35 PCIe root ports the machine had, and
	// each NIC's and disk's Port the one it sat on: a restore lays the new
	// machine out the same, so that devices hot-plugged after boot find
	// their saved state. 0 (older files, pc) means the default layout.
	RootPorts int `json:"root_ports,omitempty"`
	// Members lists the members in file order. Write fills it in.
	Members []MemberInfo `json:"members"`
}

// Identity names a kernel or initrd: its path as configured and its content
// hash. An empty Identity means "none" (no initrd).
type Identity struct {
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// Disk is one disk of the VM in device order. Member is the name of the
// member holding its image; it is empty for `path` images, which are
// referenced by Path and not copied.
type Disk struct {
	Name      string `json:"name"`
	SizeBytes uint64 `json:"size_bytes"`
	Format    string `json:"format"`
	Mediated  bool   `json:"mediated"`
	ReadOnly  bool   `json:"read_only"`
	Path      string `json:"path,omitempty"`
	Member    string `json:"member,omitempty"`
	Port      string `json:"port,omitempty"`
}

// NIC is one network card in QEMU device order. Bridge is "" for a card
// that is on no bridge (a vm fixture copy's card before bridge:attach);
// MAC is the one the guest's driver carries.
type NIC struct {
	Bridge  string `json:"bridge"`
	MAC     string `json:"mac"`
	Address string `json:"address"`
	Port    string `json:"port,omitempty"`
}

// MemberInfo is one member's name and exact byte size.
type MemberInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// Member is a member to write: Name and the file holding its bytes.
type Member struct {
	Name string
	Path string
}

// ErrCorrupt marks every error caused by the snapshot's bytes (bad magic,
// unknown version, bad manifest, truncation, checksum failure) as opposed
// to I/O errors of the destination. Fixture code treats it as a corrupt
// cache entry (30-runtime.md A9).
var ErrCorrupt = errors.New("corrupt snapshot")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// validateManifest checks the member list and that every disk stored in the
// file names a member that is neither `ram` nor `state`.
func validateManifest(m Manifest) error {
	if err := validateOrder(m.Members, m.HasRAM); err != nil {
		return err
	}
	for _, d := range m.Disks {
		if d.Member == "" {
			continue
		}
		if d.Member == MemberRAM || d.Member == MemberState || !slices.ContainsFunc(m.Members, func(mi MemberInfo) bool { return mi.Name == d.Member }) {
			return fmt.Errorf("disk %q refers to member %q, which is not a disk image member", d.Name, d.Member)
		}
	}
	return nil
}

// validateOrder checks the member order of 40 §5: disks, then ram, then
// state, which must be present and last. Names must be unique.
func validateOrder(members []MemberInfo, hasRAM bool) error {
	if len(members) == 0 || members[len(members)-1].Name != MemberState {
		return fmt.Errorf("the last member must be %q", MemberState)
	}
	seen := make(map[string]bool, len(members))
	sawRAM := false
	for i, m := range members {
		if m.Name == "" {
			return fmt.Errorf("member %d has no name", i)
		}
		if seen[m.Name] {
			return fmt.Errorf("duplicate member %q", m.Name)
		}
		seen[m.Name] = true
		if m.Size < 0 {
			return fmt.Errorf("member %q has negative size", m.Name)
		}
		switch m.Name {
		case MemberRAM:
			if i != len(members)-2 {
				return fmt.Errorf("member %q must come right before %q", MemberRAM, MemberState)
			}
			sawRAM = true
		case MemberState:
			if i != len(members)-1 {
				return fmt.Errorf("member %q must be last", MemberState)
			}
		}
	}
	if sawRAM != hasRAM {
		return fmt.Errorf("manifest has_ram=%t but %q member present=%t", hasRAM, MemberRAM, sawRAM)
	}
	return nil
}
