package initrd

import (
	"fmt"
)

// Well-known paths of the agent overlay.
const (
	// AgentPath is where the overlay puts the guest agent; the kernel
	// command line gets rdinit=AgentPath.
	AgentPath = "/sbin/provium-agent"
	// WorkerPath is where the overlay puts the worker executor, beside
	// the agent, which starts it for vm:spawn_worker.
	WorkerPath = "/sbin/provium-worker"
	// BootJSONPath holds the agent's boot inputs (VM name, time, seed, network).
	BootJSONPath = "/etc/provium/boot.json"
	// DefaultFileMode is the mode of a `files` entry that gives none.
	DefaultFileMode = 0o644
)

// File is one entry of the `files` boot option: a regular file placed in the
// guest's initramfs before init runs.
type File struct {
	Path    string // absolute, clean
	Content []byte
	// Mode holds the permission bits 0..0o7777. It is used only when
	// HasMode is set (0 is a legal mode); otherwise DefaultFileMode.
	Mode    int64
	HasMode bool
}

// FilesArchive builds the per-boot archive of the `files` boot option.
// Parents are created as 0755 directories. A later entry with the same path
// replaces an earlier one. Errors name the offending path.
func FilesArchive(files []File) (*Archive, error) {
	a := NewArchive()
	if err := addFiles(a, files); err != nil {
		return nil, err
	}
	return a, nil
}

func addFiles(a *Archive, files []File) error {
	for _, f := range files {
		mode := int64(DefaultFileMode)
		if f.HasMode {
			mode = f.Mode
		}
		if mode < 0 || mode > maxPerm {
			return fmt.Errorf("file %q: mode %O out of range 0..0o7777", f.Path, mode)
		}
		if err := a.AddFile(f.Path, f.Content, uint32(mode)); err != nil {
			return fmt.Errorf("file %w", err)
		}
	}
	return nil
}

// Overlay builds the agent overlay archive: the agent binary at AgentPath
// (0755), bootJSON at BootJSONPath (0644) when not nil, then extra files.
//
// The overlay is cached together with the profile initrd by content hash,
// so per-VM data (boot.json differs per VM name, seed and time) is better
// passed nil here and placed in the per-boot files archive instead, keeping
// one cache entry per (profile initrd, agent) pair.
func Overlay(agentBinary, bootJSON []byte, extra ...File) (*Archive, error) {
	if len(agentBinary) == 0 {
		return nil, fmt.Errorf("agent overlay: empty agent binary")
	}
	a := NewArchive()
	if err := a.AddFile(AgentPath, agentBinary, 0o755); err != nil {
		return nil, fmt.Errorf("agent overlay: %w", err)
	}
	if bootJSON != nil {
		if err := a.AddFile(BootJSONPath, bootJSON, DefaultFileMode); err != nil {
			return nil, fmt.Errorf("agent overlay: %w", err)
		}
	}
	if err := addFiles(a, extra); err != nil {
		return nil, fmt.Errorf("agent overlay: %w", err)
	}
	return a, nil
}
