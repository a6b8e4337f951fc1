package accel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

const (
	cacheFile  = "kvm-probe.json"
	bootIDPath = "/proc/sys/kernel/random/boot_id"
)

// cacheKey identifies the situation a verdict was made in: a reboot or a
// reload of the kvm module (a new device node, hence a new ctime) can change
// the answer; nothing else can.
type cacheKey struct {
	BootID   string `json:"boot_id"`
	Device   string `json:"device"`
	DevCtime string `json:"device_ctime"`
	CPUInfo  string `json:"cpuinfo"`
	Timeout  string `json:"timeout"`
}

type cacheEntry struct {
	Key    cacheKey `json:"key"`
	Result Result   `json:"result"`
}

func currentCacheKey(o Options) cacheKey {
	k := cacheKey{Device: o.Device, CPUInfo: o.CPUInfo, Timeout: o.Timeout.String(), DevCtime: "absent"}
	if b, err := os.ReadFile(bootIDPath); err == nil {
		k.BootID = strings.TrimSpace(string(b))
	}
	var st unix.Stat_t
	if err := unix.Stat(o.Device, &st); err == nil {
		k.DevCtime = fmt.Sprintf("%d.%09d", st.Ctim.Sec, st.Ctim.Nsec)
	}
	return k
}

func readCache(dir string, key cacheKey) (Result, bool) {
	if key.BootID == "" {
		return Result{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, cacheFile))
	if err != nil {
		return Result{}, false
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil || e.Key != key {
		return Result{}, false
	}
	return e.Result, true
}

// writeCache replaces the cache file atomically so concurrent Provium runs
// never read a torn entry.
func writeCache(dir string, key cacheKey, r Result) error {
	if key.BootID == "" {
		return nil // without a boot id the entry could outlive a reboot
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating cache dir: %w", err)
	}
	b, err := json.Marshal(cacheEntry{Key: key, Result: r})
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, cacheFile), b, 0o644, renameio.WithTempDir(dir)); err != nil {
		return fmt.Errorf("writing KVM probe cache: %w", err)
	}
	return nil
}
