package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestCacheDirPrecedence(t *testing.T) {
	uid := os.Getuid()
	tests := []struct {
		name string
		key  string
		env  Env
		want string
	}{
		{"key wins", "/k", envMap("PROVIUM_CACHE_DIR", "/e", "HOME", "/h"), "/k"},
		{"PROVIUM_CACHE_DIR", "", envMap("PROVIUM_CACHE_DIR", "/e", "PROVIUM_FIXTURE_CACHE", "/f", "XDG_CACHE_HOME", "/x"), "/e"},
		{"upstream alias", "", envMap("PROVIUM_FIXTURE_CACHE", "/f", "XDG_CACHE_HOME", "/x"), "/f"},
		{"empty var is unset", "", envMap("PROVIUM_CACHE_DIR", "", "XDG_CACHE_HOME", "/x"), "/x/provium/fixtures"},
		{"XDG", "", envMap("XDG_CACHE_HOME", "/x", "HOME", "/h"), "/x/provium/fixtures"},
		{"relative XDG ignored", "", envMap("XDG_CACHE_HOME", "rel", "HOME", "/h"), "/h/.cache/provium/fixtures"},
		{"HOME", "", envMap("HOME", "/h"), "/h/.cache/provium/fixtures"},
		{"nothing", "", envMap(), fmt.Sprintf("/tmp/provium-fixtures-%d", uid)},
	}
	for _, tc := range tests {
		c := emptyConfig("p", "/d", tc.env)
		c.CacheDirKey = tc.key
		if got := c.CacheDir(); got != tc.want {
			t.Errorf("%s: CacheDir = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCacheDirRelativeEnvIsAbsolute(t *testing.T) {
	c := emptyConfig("p", "/d", envMap("PROVIUM_CACHE_DIR", "rel"))
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.CacheDir(), filepath.Join(wd, "rel"); got != want {
		t.Errorf("CacheDir = %q, want %q", got, want)
	}
}

func TestScratchDirPrecedence(t *testing.T) {
	c := emptyConfig("p", "/d", envMap("XDG_RUNTIME_DIR", "/run/user/7"))
	if got := c.ScratchDir(); got != "/run/user/7/provium" {
		t.Errorf("XDG: %q", got)
	}
	c.ScratchDirKey = "/s"
	if got := c.ScratchDir(); got != "/s" {
		t.Errorf("key: %q", got)
	}
	c = emptyConfig("p", "/d", envMap())
	if got, want := c.ScratchDir(), fmt.Sprintf("/tmp/provium-%d", os.Getuid()); got != want {
		t.Errorf("fallback: %q, want %q", got, want)
	}
}

func TestAccelPrecedence(t *testing.T) {
	tests := []struct {
		flag, envVal, key string
		value, source     string
	}{
		{"kvm", "tcg", "tcg", "kvm", "--accel"},
		{"", "tcg", "kvm", "tcg", "PROVIUM_ACCEL"},
		{"", "", "kvm", "kvm", "[provium] accel"},
		{"", "", "", "auto", "default"},
	}
	for _, tc := range tests {
		c := emptyConfig("p", "/d", envMap("PROVIUM_ACCEL", tc.envVal))
		c.AccelKey = tc.key
		v, src, err := c.Accel(tc.flag)
		if err != nil || v != tc.value || src != tc.source {
			t.Errorf("Accel(%q) env=%q key=%q = %q, %q, %v; want %q, %q", tc.flag, tc.envVal, tc.key, v, src, err, tc.value, tc.source)
		}
	}
	c := emptyConfig("p", "/d", envMap("PROVIUM_ACCEL", "hvf"))
	if _, _, err := c.Accel(""); err == nil || err.Error() != "PROVIUM_ACCEL: expected `auto`, `kvm` or `tcg`, got `hvf`" {
		t.Errorf("bad env err = %v", err)
	}
	if _, _, err := c.Accel("xen"); err == nil || err.Error() != "--accel: expected `auto`, `kvm` or `tcg`, got `xen`" {
		t.Errorf("bad flag err = %v", err)
	}
}
