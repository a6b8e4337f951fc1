package image

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// guestModules are the modules the default guest needs when the kernel has
// them as modules (Debian does): virtio transports and devices (block, net,
// the agent's serial port, rng), vsock for vm:cid(), 9p,
// evdev + button for the ACPI power button, pvpanic so a panic is reported
// to the host, and ext4 (+ crc32c) for tests that format disks. Their
// dependencies are added from each module's own modinfo.
func guestModules() []string {
	return []string{
		"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net", "virtio_console",
		"virtio_rng", "vmw_vsock_virtio_transport", "9pnet_virtio", "9p",
		"evdev", "button", "pvpanic_pci", "pvpanic_mmio",
		"ext4", "crc32c_generic", "crc32c_intel",
	}
}

// module is one kernel module of the subset shipped in the image.
type module struct {
	name    string   // canonical name (underscores)
	rel     string   // path relative to /lib/modules/<ver>, e.g. kernel/fs/9p/9p.ko
	deps    []string // direct dependencies (names), from modinfo depends=
	aliases []string // modinfo alias= values
	softdep []string // modinfo softdep= values
}

// modName turns a module file name or name into the canonical form depmod
// uses: no directory, no .ko, dashes as underscores.
func modName(s string) string {
	s = path.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// moduleSet is the modules of one kernel tree, located through
// modules.order (Debian's package ships no modules.dep: depmod makes it at
// install time, and depmod may not exist on the build host).
type moduleSet struct {
	dir   string            // <tree>/lib/modules/<ver>
	paths map[string]string // name -> rel path
	order []string          // rel paths in modules.order order
}

func loadModuleSet(dir string) (*moduleSet, error) {
	data, err := os.ReadFile(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, fmt.Errorf("read modules.order: %w", err)
	}
	s := &moduleSet{dir: dir, paths: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rel := strings.TrimSpace(sc.Text())
		if rel == "" {
			continue
		}
		// Debian's modules.order lists the installed paths (kernel/...).
		s.paths[modName(rel)] = rel
		s.order = append(s.order, rel)
	}
	return s, sc.Err()
}

// readModinfo parses the .modinfo section of a module: NUL-separated key=value.
func readModinfo(file string) (map[string][]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", file, err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// closure returns the wanted modules and all their dependencies, sorted by
// name. Wanted names absent from the tree are returned in missing (the
// kernel may have them built in).
func (s *moduleSet) closure(wanted []string) (mods []*module, missing []string, err error) {
	byName := map[string]*module{}
	var visit func(name string) error
	visit = func(name string) error {
		if _, ok := byName[name]; ok {
			return nil
		}
		rel, ok := s.paths[name]
		if !ok {
			return fmt.Errorf("module %s not in modules.order", name)
		}
		info, err := readModinfo(filepath.Join(s.dir, rel))
		if err != nil {
			return err
		}
		m := &module{name: name, rel: rel, aliases: info["alias"], softdep: info["softdep"]}
		for _, d := range info["depends"] {
			for _, dep := range strings.Split(d, ",") {
				if dep != "" {
					m.deps = append(m.deps, modName(dep))
				}
			}
		}
		byName[name] = m
		for _, dep := range m.deps {
			if err := visit(dep); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}
	for _, w := range wanted {
		if _, ok := s.paths[w]; !ok {
			missing = append(missing, w)
			continue
		}
		if err := visit(w); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range byName {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	return mods, missing, nil
}

// loadOrder returns m's transitive dependencies in the order they must be
// loaded (dependencies first), m itself excluded.
func loadOrder(m *module, byName map[string]*module) []*module {
	var out []*module
	seen := map[string]bool{m.name: true}
	var visit func(x *module)
	visit = func(x *module) {
		for _, d := range x.deps {
			if seen[d] {
				continue
			}
			seen[d] = true
			dm := byName[d]
			visit(dm)
			out = append(out, dm)
		}
	}
	visit(m)
	return out
}

// indexFiles renders modules.dep, modules.alias, modules.softdep and a
// modules.order restricted to mods, in the formats depmod writes, so
// busybox modprobe, kmod and the agent all read them.
//
// modules.dep lists every transitive dependency; like depmod, the list is
// in reverse load order (modprobe loads it from the end).
func (s *moduleSet) indexFiles(mods []*module) map[string][]byte {
	byName := map[string]*module{}
	byRel := map[string]*module{}
	for _, m := range mods {
		byName[m.name] = m
		byRel[m.rel] = m
	}
	var dep, alias, softdep, order bytes.Buffer
	for _, rel := range s.order {
		m, ok := byRel[rel]
		if !ok {
			continue
		}
		fmt.Fprintln(&order, rel)
		fmt.Fprintf(&dep, "%s:", rel)
		deps := loadOrder(m, byName)
		for i := len(deps) - 1; i >= 0; i-- {
			fmt.Fprintf(&dep, " %s", deps[i].rel)
		}
		dep.WriteByte('\n')
		for _, a := range m.aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, m.name)
		}
		for _, sd := range m.softdep {
			fmt.Fprintf(&softdep, "softdep %s %s\n", m.name, sd)
		}
	}
	return map[string][]byte{
		"modules.dep":     dep.Bytes(),
		"modules.alias":   alias.Bytes(),
		"modules.softdep": softdep.Bytes(),
		"modules.order":   order.Bytes(),
	}
}
