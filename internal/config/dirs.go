package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// Accel values and where the effective one came from.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"

	AccelSourceFlag    = "--accel"
	AccelSourceEnv     = "PROVIUM_ACCEL"
	AccelSourceConfig  = "[provium] accel"
	AccelSourceDefault = "default"

	errAccelValue = "%s: expected `auto`, `kvm` or `tcg`, got `%s`"
)

var accelValues = []string{AccelAuto, AccelKVM, AccelTCG}

// Environment variables naming directories (20-cli-config.md §9).
const (
	envCacheDir         = "PROVIUM_CACHE_DIR"
	envCacheDirUpstream = "PROVIUM_FIXTURE_CACHE" // upstream's name, kept as an alias
	envXDGCache         = "XDG_CACHE_HOME"
	envXDGRuntime       = "XDG_RUNTIME_DIR"
	envHome             = "HOME"
)

// CacheDir is the fixture cache directory (30-runtime.md A6): cache_dir >
// PROVIUM_CACHE_DIR > PROVIUM_FIXTURE_CACHE > $XDG_CACHE_HOME/provium/fixtures
// > ~/.cache/provium/fixtures > /tmp/provium-fixtures-<uid>.
func (c *Config) CacheDir() string {
	if c.CacheDirKey != "" {
		return c.CacheDirKey
	}
	for _, k := range []string{envCacheDir, envCacheDirUpstream} {
		if v, ok := c.env.lookup(k); ok {
			return absOrSelf(v)
		}
	}
	// The XDG base-dir spec says relative values are invalid and ignored.
	if v, ok := c.env.lookup(envXDGCache); ok && filepath.IsAbs(v) {
		return filepath.Join(v, "provium", "fixtures")
	}
	if v, ok := c.env.lookup(envHome); ok {
		return filepath.Join(v, ".cache", "provium", "fixtures")
	}
	return fmt.Sprintf("/tmp/provium-fixtures-%d", os.Getuid())
}

// ScratchDir holds run directories, sockets and the overlay cache:
// scratch_dir > $XDG_RUNTIME_DIR/provium > /tmp/provium-<uid>.
func (c *Config) ScratchDir() string {
	if c.ScratchDirKey != "" {
		return c.ScratchDirKey
	}
	if v, ok := c.env.lookup(envXDGRuntime); ok && filepath.IsAbs(v) {
		return filepath.Join(v, "provium")
	}
	return fmt.Sprintf("/tmp/provium-%d", os.Getuid())
}

// Accel picks the acceleration: flag (the --accel value, "" if not given) >
// PROVIUM_ACCEL > [provium] accel > auto. source names where it came from,
// for messages such as "KVM requested (<source>) but unusable". An invalid
// flag or environment value is an error naming it.
func (c *Config) Accel(flag string) (value, source string, err error) {
	if flag != "" {
		return checkAccel(flag, AccelSourceFlag)
	}
	if v, ok := c.env.lookup(AccelSourceEnv); ok {
		return checkAccel(v, AccelSourceEnv)
	}
	if c.AccelKey != "" {
		return c.AccelKey, AccelSourceConfig, nil // validated at load
	}
	return AccelAuto, AccelSourceDefault, nil
}

func checkAccel(v, source string) (string, string, error) {
	for _, a := range accelValues {
		if v == a {
			return v, source, nil
		}
	}
	return "", "", fmt.Errorf(errAccelValue, source, v)
}

// absOrSelf makes an environment-given directory absolute against the
// working directory, keeping it as given if that fails.
func absOrSelf(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
