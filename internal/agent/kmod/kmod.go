// Package kmod loads the kernel modules a guest needs at boot without udev
// or modprobe: it matches the modaliases of present devices against
// modules.alias and loads the matching modules, dependencies first, with
// finit_module(2).
package kmod

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Index is the parsed modules.dep + modules.alias of one kernel.
type Index struct {
	// deps maps a module name to its dependency names, as listed.
	deps map[string][]string
	// files maps a module name to its path relative to the modules dir.
	files   map[string]string
	aliases []alias
}

type alias struct {
	pattern string
	module  string
}

// ModuleName turns a module file path into the kernel's module name:
// basename without .ko(.xz|.zst|.gz), '-' folded to '_'.
func ModuleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// ParseIndex reads modules.dep and modules.alias.
func ParseIndex(dep, aliases io.Reader) (*Index, error) {
	idx := &Index{deps: map[string][]string{}, files: map[string]string{}}
	sc := bufio.NewScanner(dep)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("kmod: modules.dep: malformed line %q", line)
		}
		name := ModuleName(file)
		idx.files[name] = strings.TrimSpace(file)
		var ds []string
		for _, d := range strings.Fields(rest) {
			ds = append(ds, ModuleName(d))
			if _, seen := idx.files[ModuleName(d)]; !seen {
				idx.files[ModuleName(d)] = d
			}
		}
		idx.deps[name] = ds
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kmod: read modules.dep: %w", err)
	}
	sc = bufio.NewScanner(aliases)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		idx.aliases = append(idx.aliases, alias{pattern: f[1], module: strings.ReplaceAll(f[2], "-", "_")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kmod: read modules.alias: %w", err)
	}
	return idx, nil
}

// File returns the path of a module relative to the modules directory.
func (idx *Index) File(module string) (string, bool) {
	f, ok := idx.files[module]
	return f, ok
}

// Match returns the modules whose alias pattern matches modalias (shell
// glob, as modprobe uses), in modules.alias order, without duplicates.
func (idx *Index) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range idx.aliases {
		if seen[a.module] {
			continue
		}
		if ok, err := path.Match(a.pattern, modalias); err == nil && ok {
			seen[a.module] = true
			out = append(out, a.module)
		}
	}
	return out
}

// LoadOrder returns modules and everything they depend on, each once,
// every module after all of its dependencies. Unknown modules (built in, or
// absent from modules.dep) are skipped; a dependency cycle is broken rather
// than looped on.
func (idx *Index) LoadOrder(modules []string) []string {
	var out []string
	state := map[string]int{} // 0 new, 1 in progress, 2 done
	var visit func(m string)
	visit = func(m string) {
		if state[m] != 0 {
			return
		}
		if _, ok := idx.files[m]; !ok {
			return
		}
		state[m] = 1
		for _, d := range idx.deps[m] {
			visit(d)
		}
		state[m] = 2
		out = append(out, m)
	}
	for _, m := range modules {
		visit(m)
	}
	return out
}
