package guestinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// mount is one early filesystem.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	// keepExisting leaves a target that is already a mount point or a
	// non-empty directory alone: an earlier stage (an init that switched
	// root and exec'd the agent) may have put content there.
	keepExisting bool
}

// standaloneMounts are what a standalone agent provides before anything
// else runs; devpts needs /dev first. proc, sysfs and devtmpfs are mounted
// afresh whatever is there (they show the same kernel state).
var standaloneMounts = []mount{
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", true},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", true},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", false},
}

// MountStandalone mounts devtmpfs, proc, sysfs, /tmp, /run and devpts,
// creating mount points as needed. An already mounted target (EBUSY, e.g. a
// kernel with DEVTMPFS_MOUNT) is fine; /tmp and /run are left as they are
// when they are mount points or hold files already.
func MountStandalone() error {
	var errs []error
	for _, m := range standaloneMounts {
		if m.keepExisting {
			busy, err := Occupied(m.target)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if busy {
				continue
			}
		}
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("mkdir %s: %w", m.target, err))
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && err != unix.EBUSY {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	// Programs expect /dev/ptmx and the standard fd links; devtmpfs does
	// not create them.
	_ = os.Symlink("pts/ptmx", "/dev/ptmx")
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
	return errors.Join(errs...)
}

// Occupied reports whether dir is a mount point or a directory with
// entries, which a fresh mount would hide. A missing dir is not occupied;
// a file that is not a directory is an error.
func Occupied(dir string) (bool, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, fmt.Errorf("%s is not a directory", dir)
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		if st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			return true, nil
		}
	} else if mp, err := crossesDevice(dir, st); err != nil || mp {
		return mp, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	return len(names) > 0, nil
}

// crossesDevice is the mount-point test of kernels without
// STATX_ATTR_MOUNT_ROOT (before 5.8): dir and its parent differ in device.
func crossesDevice(dir string, st unix.Statx_t) (bool, error) {
	var parent unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(filepath.Clean(dir)), 0, 0, &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return parent.Dev_major != st.Dev_major || parent.Dev_minor != st.Dev_minor, nil
}

// SetClock sets CLOCK_REALTIME to secs since the epoch.
func SetClock(secs float64) error {
	sec, nsec := SplitTime(secs)
	ts := unix.Timespec{Sec: sec, Nsec: nsec}
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set clock: %w", err)
	}
	return nil
}

// SetHostname sets the kernel hostname (the VM name).
func SetHostname(name string) error {
	if name == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname %q: %w", name, err)
	}
	return nil
}

// seedBytes is how much seed-derived material goes into the pool: the
// whole input pool's worth, so it dominates what boot mixed in before.
const seedBytes = 512

// SeedKernelRNG mixes a seed-derived stream into the kernel pool with
// RNDADDENTROPY (credited, so getrandom does not block early).
func SeedKernelRNG(seed proto.Seed) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("seed rng: %w", err)
	}
	defer f.Close()
	data := SeedStream(seed, seedBytes)
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	buf := make([]byte, 8+len(data))
	*(*int32)(unsafe.Pointer(&buf[0])) = int32(len(data) * 8)
	*(*int32)(unsafe.Pointer(&buf[4])) = int32(len(data))
	copy(buf[8:], data)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return fmt.Errorf("seed rng: RNDADDENTROPY: %w", e)
	}
	return nil
}

// hwrngQuality is the hwrng core's knob for how much the kernel trusts the
// current hardware rng (per 1024 bits).
const hwrngQuality = "class/misc/hw_random/rng_quality"

// QuietHWRNG sets the hwrng quality to 0: the kernel then credits nothing
// for what its hwrng thread reads and that thread reads one block per
// reseed interval only (the Debian 6.1 kernel keeps it running whatever
// the quality; the host and agent line /dev/hwrng up around it, see
// OpHWRNGSync). The pool is seeded by the agent instead (SeedKernelRNG).
// No hwrng is fine.
func QuietHWRNG(sysRoot string) error {
	err := os.WriteFile(filepath.Join(sysRoot, hwrngQuality), []byte("0\n"), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hwrng quality: %w", err)
	}
	return nil
}

// ApplyBootInfo applies the boot inputs in the order that matters: the
// clock first (so every later timestamp is the controlled one), then the
// hostname and the entropy seed.
func ApplyBootInfo(bi proto.BootInfo) error {
	var errs []error
	if bi.InitialTime != nil {
		errs = append(errs, SetClock(*bi.InitialTime))
	}
	errs = append(errs, SetHostname(bi.VMName))
	if bi.RNGSeed != nil {
		errs = append(errs, SeedKernelRNG(*bi.RNGSeed))
	}
	return errors.Join(errs...)
}

// sysrqPath is the kernel's magic-sysrq mask, relative to procfs.
const sysrqPath = "sys/kernel/sysrq"

// EnableSysrq allows every magic sysrq function. Debian's default mask
// (438) lacks the debug dumps (`w`, `l`) that the host triggers over the
// serial console to diagnose a guest whose agent no longer answers.
func EnableSysrq(procRoot string) error {
	if err := os.WriteFile(filepath.Join(procRoot, sysrqPath), []byte("1\n"), 0); err != nil {
		return fmt.Errorf("enable sysrq: %w", err)
	}
	return nil
}
