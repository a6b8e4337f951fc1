package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/provium/provium/internal/initrd"
)

// busyboxPath is where the image keeps busybox; applet links point here.
const busyboxPath = "/bin/busybox"

// skeleton is the directory tree of the image (besides what files imply):
// mount points the standalone agent mounts on and the usual FHS places.
func skeleton() []struct {
	path string
	perm uint32
} {
	return []struct {
		path string
		perm uint32
	}{
		{"/bin", 0o755}, {"/dev", 0o755}, {"/etc", 0o755}, {"/home", 0o755},
		{"/lib", 0o755}, {"/mnt", 0o755}, {"/proc", 0o755}, {"/root", 0o700},
		{"/run", 0o755}, {"/sbin", 0o755}, {"/sys", 0o755}, {"/tmp", 0o1777},
		{"/usr/bin", 0o755}, {"/usr/sbin", 0o755}, {"/var/tmp", 0o1777},
	}
}

// etcFiles are the minimal account and name-service files busybox applets
// (id, ls -l, ping localhost) expect.
func etcFiles() map[string]string {
	return map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":  "root:x:0:\nnogroup:x:65534:\n",
		"/etc/hosts":  "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
}

// rootfsInput is everything the image initrd is made of.
type rootfsInput struct {
	release    string // kernel release, the /lib/modules/<release> name
	modulesDir string // unpacked <tree>/lib/modules/<release>
	busybox    string // unpacked busybox binary
}

// buildRootfs assembles the image initrd. There is deliberately no /init:
// Provium appends the agent overlay and boots with rdinit=/sbin/provium-agent,
// so the agent runs standalone as PID 1.
func buildRootfs(ctx context.Context, in rootfsInput) (*initrd.Archive, []string, error) {
	a := initrd.NewArchive()
	for _, d := range skeleton() {
		if err := a.AddDir(d.path, d.perm); err != nil {
			return nil, nil, err
		}
	}
	// The kernel opens /dev/console for PID 1's stdio before anything can
	// mount devtmpfs; without the node init starts with no console.
	if err := a.AddCharDev("/dev/console", 0o600, 5, 1); err != nil {
		return nil, nil, err
	}
	if err := a.AddCharDev("/dev/null", 0o666, 1, 3); err != nil {
		return nil, nil, err
	}
	for p, content := range etcFiles() {
		if err := a.AddFile(p, []byte(content), 0o644); err != nil {
			return nil, nil, err
		}
	}

	bb, err := os.ReadFile(in.busybox)
	if err != nil {
		return nil, nil, fmt.Errorf("read busybox: %w", err)
	}
	if err := a.AddFile(busyboxPath, bb, 0o755); err != nil {
		return nil, nil, err
	}
	applets, err := busyboxApplets(ctx, in.busybox)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, p := range applets {
		if err := a.AddSymlink(p, busyboxPath); err != nil {
			return nil, nil, fmt.Errorf("busybox applet: %w", err)
		}
		have[path.Base(p)] = true
	}
	// Debian's busybox-static leaves out a few tools that tests commonly
	// call (printenv appears in the API's own examples); small shell
	// versions stand in for them.
	for name, script := range shellTools() {
		if have[name] {
			continue
		}
		if err := a.AddFile("/usr/bin/"+name, []byte(script), 0o755); err != nil {
			return nil, nil, err
		}
	}

	set, err := loadModuleSet(in.modulesDir)
	if err != nil {
		return nil, nil, err
	}
	mods, missing, err := set.closure(guestModules())
	if err != nil {
		return nil, nil, err
	}
	modRoot := path.Join("/lib/modules", in.release)
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(in.modulesDir, m.rel))
		if err != nil {
			return nil, nil, fmt.Errorf("read module: %w", err)
		}
		if err := a.AddFile(path.Join(modRoot, m.rel), data, 0o644); err != nil {
			return nil, nil, err
		}
	}
	for name, content := range set.indexFiles(mods) {
		if err := a.AddFile(path.Join(modRoot, name), content, 0o644); err != nil {
			return nil, nil, err
		}
	}
	// modules.builtin tells module loaders which names need no file.
	if builtin, err := os.ReadFile(filepath.Join(in.modulesDir, "modules.builtin")); err == nil {
		if err := a.AddFile(path.Join(modRoot, "modules.builtin"), builtin, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return a, missing, nil
}

// busyboxApplets lists the applet link paths (absolute) by running the
// unpacked busybox itself, so the links match the binary exactly. Links
// outside /bin, /sbin and /usr (busybox's "linuxrc") and busybox's own path
// are skipped.
func busyboxApplets(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, cmdErr(err))
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rel := strings.TrimSpace(sc.Text())
		p := "/" + strings.TrimPrefix(rel, "/")
		if rel == "" || p == busyboxPath {
			continue
		}
		if !strings.HasPrefix(p, "/bin/") && !strings.HasPrefix(p, "/sbin/") && !strings.HasPrefix(p, "/usr/") {
			continue
		}
		applets = append(applets, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list-full listed no applets", bin)
	}
	return applets, nil
}
