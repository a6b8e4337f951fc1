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
	var errs []error
	for round := 0; round < maxColdplugRounds; round++ {
		aliases, err := DeviceModaliases(sysRoot)
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
	var files []string
	for _, pattern := range []string{
		filepath.Join(sysRoot, "bus", "*", "devices", "*", "modalias"),
		filepath.Join(sysRoot, "class", "input", "*", "modalias"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("kmod: scan modaliases: %w", err)
		}
		files = append(files, m...)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // devices come and go; one unreadable file is not fatal
		}
		a := strings.TrimSpace(string(b))
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out, nil
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
