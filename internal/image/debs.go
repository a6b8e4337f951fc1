package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// kernelMetaPackage always depends on the current Debian kernel package.
const kernelMetaPackage = "linux-image-amd64"

// busyboxPackage ships a statically linked busybox.
const busyboxPackage = "busybox-static"

// kernelPackageRE matches versioned kernel packages (not the meta package,
// which holds no kernel) and their .deb file names.
var kernelPackageRE = regexp.MustCompile(`^linux-image-[0-9][^_]*-amd64(-unsigned)?$`)

// debSet is the pair of packages an image is built from.
type debSet struct {
	kernel, busybox string // .deb paths
}

// KernelPackage asks apt which versioned kernel package linux-image-amd64
// currently depends on (e.g. linux-image-6.1.0-57-amd64).
func KernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", kernelMetaPackage).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", kernelMetaPackage, cmdErr(err))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		field, pkg, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		pkg = strings.TrimSpace(pkg)
		if ok && strings.TrimLeft(field, "|") == "Depends" && kernelPackageRE.MatchString(pkg) {
			return pkg, nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image-<version>-amd64 package", kernelMetaPackage)
}

// Download fetches the kernel and busybox-static .debs into dir with an
// unprivileged `apt-get download` (no root, no installation), the same set
// `provium image build --from-debs DIR` accepts.
func Download(ctx context.Context, dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	kpkg, err := KernelPackage(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	fmt.Fprintf(progress, "image: downloading %s %s\n", kpkg, busyboxPackage)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", kpkg, busyboxPackage)
	cmd.Dir = dir
	// apt-get writes both streams concurrently; serialize them onto progress
	// and keep stderr for the error message.
	out := &lockedWriter{w: progress}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = io.MultiWriter(out, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get download %s %s: %w: %s", kpkg, busyboxPackage, err, lastLine(stderr.Bytes()))
	}
	return nil
}

// lockedWriter serializes writes from a command's stdout and stderr
// copiers onto one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// findDebs picks the kernel and busybox-static .debs in dir. Exactly one of
// each must be there, so the image's content never depends on a guess.
func findDebs(dir string) (debSet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return debSet{}, fmt.Errorf("read debs dir: %w", err)
	}
	var kernels, busyboxes []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".deb") {
			continue
		}
		pkg, _, _ := strings.Cut(name, "_")
		switch {
		case kernelPackageRE.MatchString(pkg):
			kernels = append(kernels, filepath.Join(dir, name))
		case pkg == busyboxPackage:
			busyboxes = append(busyboxes, filepath.Join(dir, name))
		}
	}
	pick := func(what string, found []string) (string, error) {
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
			return "", fmt.Errorf("no %s .deb in %s", what, dir)
		default:
			return "", fmt.Errorf("several %s .debs in %s: %s", what, dir, strings.Join(found, ", "))
		}
	}
	var s debSet
	if s.kernel, err = pick("linux-image-<version>-amd64", kernels); err != nil {
		return debSet{}, err
	}
	if s.busybox, err = pick(busyboxPackage, busyboxes); err != nil {
		return debSet{}, err
	}
	return s, nil
}

// unpackDeb extracts a .deb's files (not its scripts) into dest.
func unpackDeb(ctx context.Context, deb, dest string) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dest).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(deb), err, lastLine(out))
	}
	return nil
}

// cmdErr adds a failed command's stderr to its error.
func cmdErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, lastLine(ee.Stderr))
	}
	return err
}

// lastLine returns the last non-empty line of a command's output, usually
// the one that says what went wrong.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
