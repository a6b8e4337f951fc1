package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel lookup failures in a composed root (20-cli-config.md §7.3).
const (
	errRootNoKernel    = "profile `%s`: root `%s` holds no kernel (looked for boot/vmlinuz* and usr/lib/modules/*/vmlinuz*); set `kernel`"
	errRootManyKernels = "profile `%s`: root `%s` holds several kernels (%s); set `kernel` to choose one"
	rootKernelGlob     = "boot/vmlinuz*"
	rootKernelAltGlob  = "usr/lib/modules/*/vmlinuz*"
)

// ResolveKernel returns the kernel to boot: `kernel` when set, else the
// single <root>/boot/vmlinuz*, else the single <root>/usr/lib/modules/*/vmlinuz*.
// It touches the file system, so it is called at boot, not at load.
func (p *Profile) ResolveKernel() (string, error) {
	if p.Kernel != "" {
		return p.Kernel, nil
	}
	for _, pattern := range []string{rootKernelGlob, rootKernelAltGlob} {
		matches, err := kernelFiles(filepath.Join(p.Root, pattern))
		if err != nil {
			return "", fmt.Errorf("profile `%s`: look for a kernel in `%s`: %w", p.Name, p.Root, err)
		}
		switch len(matches) {
		case 0:
			continue
		case 1:
			return matches[0], nil
		default:
			return "", fmt.Errorf(errRootManyKernels, p.Name, p.Root, strings.Join(matches, ", "))
		}
	}
	return "", fmt.Errorf(errRootNoKernel, p.Name, p.Root)
}

// kernelFiles globs pattern and keeps regular files (following symlinks).
// Two names for the same file (Debian's /boot/vmlinuz → vmlinuz-6.1…
// symlink) count as one kernel.
func kernelFiles(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []string
	var seen []os.FileInfo
outer:
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		for _, s := range seen {
			if os.SameFile(s, fi) {
				continue outer
			}
		}
		seen = append(seen, fi)
		out = append(out, m)
	}
	return out, nil
}
