package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/provium/provium/internal/image"
	"github.com/provium/provium/internal/vmm"
)

// Kernel boot modes of the profile key kernel_boot.
const (
	KernelBootAuto    = "auto"
	KernelBootPVH     = "pvh"
	KernelBootBzImage = "bzimage"
)

// kernelCache turns bzImages into PVH-bootable ELF vmlinux files once per
// content hash (extraction costs seconds; booting the ELF saves ~4 s under
// TCG on every boot).
type kernelCache struct {
	dir string
	mu  sync.Mutex
	// memo maps a kernel path to the kernel to boot for it.
	memo map[string]string
}

func newKernelCache(dir string) *kernelCache {
	return &kernelCache{dir: dir, memo: map[string]string{}}
}

// bootable returns the kernel to pass to QEMU for the profile's kernel.
func (k *kernelCache) bootable(ctx context.Context, profile, kernel, mode string) (string, error) {
	if mode == KernelBootBzImage {
		return kernel, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key := mode + "\x00" + kernel
	if p, ok := k.memo[key]; ok {
		return p, nil
	}
	pvh, err := vmm.HasPVHNote(kernel)
	if err == nil && pvh {
		k.memo[key] = kernel
		return kernel, nil
	}
	out, err := k.extract(ctx, kernel)
	if err != nil {
		if mode == KernelBootPVH {
			return "", fmt.Errorf("profile `%s`: kernel_boot = \"pvh\" but %s has no PVH entry and no ELF could be extracted: %v", profile, kernel, err)
		}
		// auto: boot the image as given.
		k.memo[key] = kernel
		return kernel, nil
	}
	k.memo[key] = out
	return out, nil
}

// extract writes the ELF vmlinux inside a bzImage into the cache.
func (k *kernelCache) extract(ctx context.Context, kernel string) (string, error) {
	f, err := os.Open(kernel)
	if err != nil {
		return "", fmt.Errorf("open kernel: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read kernel: %w", err)
	}
	out := filepath.Join(k.dir, hex.EncodeToString(h.Sum(nil))[:24]+".vmlinux")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	bz, err := os.ReadFile(kernel)
	if err != nil {
		return "", fmt.Errorf("read kernel: %w", err)
	}
	elf, err := image.ExtractVmlinux(ctx, bz)
	if err != nil {
		return "", err
	}
	if err := image.CheckPVH(elf); err != nil {
		return "", err
	}
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.tmp.%d", out, os.Getpid())
	if err := os.WriteFile(tmp, elf, 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}
