// Package guesttest gives tests that boot real guests the default image's
// profile. The image is built (from Debian packages, via apt-get download)
// the first time a test needs it and cached in the user's cache directory.
package guesttest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/image"
)

var (
	once   sync.Once
	result *image.Result
	err    error
)

// Image returns the default image, building it if needed.
func Image(t testing.TB) *image.Result {
	t.Helper()
	once.Do(func() {
		dir, derr := image.DefaultDir()
		if derr != nil {
			err = derr
			return
		}
		result, err = image.Build(context.Background(), image.Options{Out: dir, Progress: os.Stderr})
	})
	if err != nil {
		t.Fatalf("default image: %v", err)
	}
	return result
}

// Config returns a configuration with the default image as profile `linux`.
func Config(t testing.TB) *config.Config {
	t.Helper()
	return ConfigText(t, Image(t).Profile)
}

// ConfigText loads text as a provium.toml (in a fresh directory); tests
// build variants of the default image's profile with it.
func ConfigText(t testing.TB, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "provium.toml")
	if werr := os.WriteFile(path, []byte(text), 0o644); werr != nil {
		t.Fatal(werr)
	}
	cfg, lerr := config.Load(path)
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, p := range cfg.Profiles {
		p.AgentBootTimeout = max(p.AgentBootTimeout, LoadedBootTimeout)
	}
	return cfg
}

// LoadedBootTimeout is the agent boot timeout of Config's profiles: a TCG
// boot on a busy machine (several test packages at once on two cores) has
// been seen to take 55 s, beyond the default 30 s.
const LoadedBootTimeout = 120 * time.Second

// ScratchRoot returns a short scratch root for a test (unix socket paths are
// limited to 107 bytes, so t.TempDir() paths are too long).
func ScratchRoot(t testing.TB) string {
	t.Helper()
	dir, derr := os.MkdirTemp("/tmp", "pvt-")
	if derr != nil {
		t.Fatal(derr)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
