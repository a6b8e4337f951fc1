package lspsetup

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestRunWritesStubsAndConfig(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Run(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	typesPath := filepath.Join(dir, ".provium-meta", "types.lua")
	rcPath := filepath.Join(dir, ".luarc.json")
	if want := "  wrote " + typesPath + "\n  wrote " + rcPath + "\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if got := readFile(t, typesPath); got != string(typesLua) {
		t.Error("types.lua differs from the embedded stub")
	}
	var rc struct {
		Runtime struct {
			Version string `json:"version"`
		} `json:"runtime"`
		Workspace struct {
			Library []string `json:"library"`
		} `json:"workspace"`
		Diagnostics struct {
			Globals []string `json:"globals"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(readFile(t, rcPath)), &rc); err != nil {
		t.Fatalf(".luarc.json is not JSON: %v", err)
	}
	if rc.Runtime.Version != "Lua 5.4" {
		t.Errorf("runtime.version = %q", rc.Runtime.Version)
	}
	if !slices.Equal(rc.Workspace.Library, []string{".provium-meta"}) {
		t.Errorf("workspace.library = %v", rc.Workspace.Library)
	}
	for _, g := range []string{"test", "todo", "wait_until", "json", "provium"} {
		if !slices.Contains(rc.Diagnostics.Globals, g) {
			t.Errorf("diagnostics.globals %v lacks %s", rc.Diagnostics.Globals, g)
		}
	}
}

func TestRunKeepsExistingConfigAndPrintsMergeHint(t *testing.T) {
	dir := t.TempDir()
	rcPath := filepath.Join(dir, ".luarc.json")
	const mine = `{"runtime":{"version":"LuaJIT"}}`
	if err := os.WriteFile(rcPath, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".provium-meta", "types.lua")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("-- old"), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := Run(dir, false, &out); err != nil {
		t.Fatalf("refusal must succeed, got %v", err)
	}
	if got := readFile(t, rcPath); got != mine {
		t.Errorf(".luarc.json was changed to %q", got)
	}
	if got := readFile(t, stale); got != string(typesLua) {
		t.Error("types.lua must be rewritten even when the config is kept")
	}
	want := "  wrote " + stale + "\n" +
		"  " + rcPath + " already exists; not overwriting (pass --force to replace).\n" +
		"  to enable provium types, merge this into the existing config:\n" +
		"\n"
	for _, line := range strings.Split(strings.TrimSuffix(luarcJSON, "\n"), "\n") {
		want += "    " + line + "\n"
	}
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(out.String(), "\n    {\n") || !strings.Contains(out.String(), `        "version": "Lua 5.4"`) {
		t.Errorf("merge snippet not indented by four spaces:\n%s", out.String())
	}
}

func TestRunForceReplacesConfig(t *testing.T) {
	dir := t.TempDir()
	rcPath := filepath.Join(dir, ".luarc.json")
	if err := os.WriteFile(rcPath, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(dir, true, &out); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, rcPath); got != luarcJSON {
		t.Errorf(".luarc.json = %q, want the generated config", got)
	}
	if !strings.HasSuffix(out.String(), "  wrote "+rcPath+"\n") {
		t.Errorf("output %q does not report writing %s", out.String(), rcPath)
	}
}

func TestRunRejectsMissingOrNonDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	for _, dir := range []string{missing, file} {
		var out bytes.Buffer
		err := Run(dir, false, &out)
		var nd *NotDirectoryError
		if !errors.As(err, &nd) {
			t.Fatalf("Run(%s) = %v, want NotDirectoryError", dir, err)
		}
		if want := "`" + dir + "` is not a directory"; err.Error() != want {
			t.Errorf("error %q, want %q", err.Error(), want)
		}
		if out.Len() != 0 {
			t.Errorf("printed %q before failing", out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(missing, ".provium-meta")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created files for a missing DIR: %v", err)
	}
}

func TestRunDefaultsToCurrentDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	if err := Run("", false, &out); err != nil {
		t.Fatal(err)
	}
	if want := "  wrote .provium-meta/types.lua\n  wrote .luarc.json\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}
