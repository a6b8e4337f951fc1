package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// Output file names inside the image directory.
const (
	VmlinuxName = "vmlinux"
	BzImageName = "bzImage"
	InitrdName  = "initrd.cpio.gz"
	ProfileName = "profile.toml"
	// releaseName records the kernel release so a reused image reports it.
	releaseName = "kernel.release"
	// formatName records the layout version of the image; formatVersion
	// changes whenever the image content changes meaning.
	formatName    = "image.format"
	formatVersion = "2"
)

// Cmdline is the kernel command line of the image profile, tuned for boot
// speed under TCG (40-guest-and-infra.md §4).
const Cmdline = "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests rodata=off 8250.nr_uarts=1 no_timer_check tsc=reliable reboot=t"

// Options configures Build.
type Options struct {
	Out      string    // output directory; "" = DefaultDir()
	Force    bool      // rebuild even when a complete image is present
	FromDebs string    // take the .debs from this directory instead of apt-get download
	Progress io.Writer // progress lines (stderr in the CLI); nil = discard
}

// Result describes a built (or reused) image.
type Result struct {
	Dir           string // absolute output directory
	Vmlinux       string // ELF kernel, booted through PVH; the profile's kernel
	BzImage       string // the original compressed kernel
	Initrd        string // initrd.cpio.gz (no agent, no /init)
	ProfileFile   string // profile.toml holding Profile
	KernelRelease string // e.g. 6.1.0-57-amd64
	Profile       string // the [profiles.linux] block, ready to append to provium.toml
	Reused        bool   // an existing complete image was returned unchanged
}

// DefaultDir is ~/.cache/provium/image, honouring XDG_CACHE_HOME.
func DefaultDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("image dir: %w", err)
	}
	return filepath.Join(base, "provium", "image"), nil
}

// Build makes the default Linux guest image in opts.Out, or returns the one
// already there (complete = all files present) unless opts.Force.
func Build(ctx context.Context, opts Options) (*Result, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	out := opts.Out
	if out == "" {
		var err error
		if out, err = DefaultDir(); err != nil {
			return nil, err
		}
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("image dir: %w", err)
	}
	res := newResult(out)
	if !opts.Force {
		if release, ok := complete(out); ok {
			res.KernelRelease = release
			res.Reused = true
			fmt.Fprintf(progress, "image: reusing %s (use --force to rebuild)\n", out)
			return res, nil
		}
	}

	work, err := os.MkdirTemp("", "provium-image-")
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	defer os.RemoveAll(work)

	debDir := opts.FromDebs
	if debDir == "" {
		debDir = filepath.Join(work, "debs")
		if err := Download(ctx, debDir, progress); err != nil {
			return nil, err
		}
	}
	debs, err := findDebs(debDir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "image: unpacking %s, %s\n", filepath.Base(debs.kernel), filepath.Base(debs.busybox))
	kernelTree := filepath.Join(work, "kernel")
	bbTree := filepath.Join(work, "busybox")
	if err := unpackDeb(ctx, debs.kernel, kernelTree); err != nil {
		return nil, err
	}
	if err := unpackDeb(ctx, debs.busybox, bbTree); err != nil {
		return nil, err
	}
	release, modulesDir, err := kernelRelease(kernelTree)
	if err != nil {
		return nil, err
	}
	res.KernelRelease = release

	bz, err := os.ReadFile(filepath.Join(kernelTree, "boot", "vmlinuz-"+release))
	if err != nil {
		return nil, fmt.Errorf("kernel package: %w", err)
	}
	fmt.Fprintf(progress, "image: extracting vmlinux from the %s bzImage\n", release)
	vmlinux, err := ExtractVmlinux(ctx, bz)
	if err != nil {
		return nil, err
	}
	if err := CheckPVH(vmlinux); err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "image: packing busybox and modules into %s\n", InitrdName)
	rootfs, missing, err := buildRootfs(ctx, rootfsInput{
		release:    release,
		modulesDir: modulesDir,
		busybox:    filepath.Join(bbTree, "bin", "busybox"),
	})
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		fmt.Fprintf(progress, "image: not built as modules (built in or absent): %s\n", strings.Join(missing, " "))
	}
	var initrdBuf bytes.Buffer
	// Default level: within 1% of the best size here at a sixth of the
	// time; the guest's unpack time hardly differs.
	if err := rootfs.WriteSegment(&initrdBuf, gzip.DefaultCompression); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("image dir: %w", err)
	}
	// profile.toml goes last: its presence marks a complete image.
	writes := []struct {
		path string
		data []byte
	}{
		{res.BzImage, bz},
		{res.Vmlinux, vmlinux},
		{res.Initrd, initrdBuf.Bytes()},
		{filepath.Join(out, releaseName), []byte(release + "\n")},
		{filepath.Join(out, formatName), []byte(formatVersion + "\n")},
		{res.ProfileFile, []byte(res.Profile)},
	}
	for _, w := range writes {
		if err := renameio.WriteFile(w.path, w.data, 0o644, renameio.WithTempDir(filepath.Dir(w.path))); err != nil {
			return nil, fmt.Errorf("image build: %w", err)
		}
	}
	fmt.Fprintf(progress, "image: wrote %s\n", out)
	return res, nil
}

func newResult(out string) *Result {
	r := &Result{
		Dir:         out,
		Vmlinux:     filepath.Join(out, VmlinuxName),
		BzImage:     filepath.Join(out, BzImageName),
		Initrd:      filepath.Join(out, InitrdName),
		ProfileFile: filepath.Join(out, ProfileName),
	}
	r.Profile = profileSnippet(r.Vmlinux, r.Initrd)
	return r
}

// complete reports whether out holds a whole image, and its kernel release.
func complete(out string) (string, bool) {
	for _, name := range []string{VmlinuxName, BzImageName, InitrdName, ProfileName} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || !fi.Mode().IsRegular() {
			return "", false
		}
	}
	// An image laid out by an older Provium lacks what newer agents and
	// tests rely on: rebuild it.
	if f, err := os.ReadFile(filepath.Join(out, formatName)); err != nil || strings.TrimSpace(string(f)) != formatVersion {
		return "", false
	}
	release, err := os.ReadFile(filepath.Join(out, releaseName))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(release)), true
}

// kernelRelease finds the single /lib/modules/<release> of an unpacked
// kernel package (or /usr/lib/modules on merged-/usr packaging).
func kernelRelease(tree string) (release, modulesDir string, err error) {
	for _, base := range []string{"lib/modules", "usr/lib/modules"} {
		entries, err := os.ReadDir(filepath.Join(tree, base))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("kernel package: %w", err)
		}
		var dirs []string
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		if len(dirs) != 1 {
			return "", "", fmt.Errorf("kernel package has %d module trees under /%s, want 1", len(dirs), base)
		}
		return dirs[0], filepath.Join(tree, base, dirs[0]), nil
	}
	return "", "", errors.New("kernel package has no /lib/modules/<release>")
}
