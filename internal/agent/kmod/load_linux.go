package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// finit_module flag asking the kernel to decompress the module itself.
const moduleInitCompressedFile = 0x4

// maxColdplugRounds bounds the rescans: each round can only add devices
// exposed by the previous round's drivers (PCI → virtio bus → input), so a
// few rounds reach the fixed point.
const maxColdplugRounds = 8

// Coldplug loads the modules matching every device currently present under
// sysRoot (see DeviceModaliases), from modDir (/lib/modules/<release>), and
// rescans until no new module matches: loading virtio_pci is what makes the
// virtio devices, and so virtio_console's match, appear. A missing modDir
// means a kernel with everything built in: nothing to do. Failures of
// single modules are collected, not fatal: a guest that still finds its
// agent port should boot.
func Coldplug(sysRoot, modDir string) (loaded []string, err error) {
	dep, derr := os.Open(filepath.Join(modDir, "modules.dep"))
	if errors.Is(derr, os.ErrNotExist) {
		return nil, nil
	}
	if derr != nil {
		return nil, fmt.Errorf("kmod: %w", derr)
	}
	defer dep.Close()
	al, aerr := os.Open(filepath.Join(modDir, "modules.alias"))
	if aerr != nil {
		return nil, fmt.Errorf("kmod: %w", aerr)
	}
	defer al.Close()
	idx, err := ParseIndex(dep, al)
	if err != nil {
		return nil, err
	}
	tried := map[string]bool{}
	scan := newDeviceScan(sysRoot)
	var errs []error
	for round := 0; round < maxColdplugRounds; round++ {
		// Only devices that appeared since the last round are read: a
		// guest boots through several rounds, and under TCG every sysfs
		// read costs.
		aliases, err := scan.fresh()
		if err != nil {
			return loaded, err
		}
		var wanted []string
		for _, a := range aliases {
			wanted = append(wanted, idx.Match(a)...)
		}
		var fresh []string
		for _, m := range idx.LoadOrder(wanted) {
			if !tried[m] {
				tried[m] = true
				fresh = append(fresh, m)
			}
		}
		if len(fresh) == 0 {
			break
		}
		for _, m := range fresh {
			file, _ := idx.File(m)
			switch err := LoadFile(filepath.Join(modDir, file)); {
			case err == nil:
				loaded = append(loaded, m)
			case errors.Is(err, unix.EEXIST):
				// Already loaded (or built in under the same name).
			default:
				errs = append(errs, fmt.Errorf("load %s: %w", m, err))
			}
		}
	}
	return loaded, errors.Join(errs...)
}

// DeviceModaliases lists the modalias of every device on every bus, plus
// the input class (not a bus, but evdev — needed for the power button —
// binds through it), sorted and without duplicates.
func DeviceModaliases(sysRoot string) ([]string, error) {
	return newDeviceScan(sysRoot).fresh()
}

// deviceScan remembers which device directories it has read, so a rescan
// reads only the modaliases of devices that appeared since.
type deviceScan struct {
	sysRoot string
	seen    map[string]bool // device directories already read
	buf     []byte
}

func newDeviceScan(sysRoot string) *deviceScan {
	return &deviceScan{sysRoot: sysRoot, seen: map[string]bool{}, buf: make([]byte, 4096)}
}

// fresh returns the modaliases of the devices not seen by an earlier call,
// sorted and without duplicates.
func (s *deviceScan) fresh() ([]string, error) {
	var dirs []string
	buses, err := names(filepath.Join(s.sysRoot, "bus"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kmod: scan modaliases: %w", err)
	}
	for _, b := range buses {
		dirs = append(dirs, filepath.Join(s.sysRoot, "bus", b, "devices"))
	}
	dirs = append(dirs, filepath.Join(s.sysRoot, "class", "input"))
	seenAlias := map[string]bool{}
	var out []string
	for _, dir := range dirs {
		devs, err := names(dir)
		if err != nil {
			continue // a bus without devices, or one going away
		}
		for _, d := range devs {
			dev := filepath.Join(dir, d)
			if s.seen[dev] {
				continue
			}
			a, ok := s.readModalias(filepath.Join(dev, "modalias"))
			if !ok {
				// No modalias (yet): a device whose driver core has not
				// finished may gain one, so it is not marked seen.
				continue
			}
			s.seen[dev] = true
			if a != "" && !seenAlias[a] {
				seenAlias[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// readModalias reads one modalias file with plain system calls (no stat,
// no growing buffer: the kernel caps sysfs attributes at a page).
func (s *deviceScan) readModalias(file string) (string, bool) {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, s.buf)
	if err != nil || n < 0 {
		return "", false
	}
	return strings.TrimSpace(string(s.buf[:n])), true
}

// names lists a directory's entries, unsorted and without stat calls.
func names(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// LoadFile loads one module file with finit_module, letting the kernel
// decompress .xz/.zst/.gz modules.
func LoadFile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(file, ".xz") || strings.HasSuffix(file, ".zst") || strings.HasSuffix(file, ".gz") {
		flags |= moduleInitCompressedFile
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil {
		return fmt.Errorf("finit_module %s: %w", file, err)
	}
	return nil
}
