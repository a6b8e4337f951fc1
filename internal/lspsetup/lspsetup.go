// Package lspsetup implements `provium lsp-setup` (20-cli-config.md §6): it
// drops Lua Language Server definitions of the test API and a .luarc.json
// into a test directory so editors know the harness globals.
package lspsetup

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// typesLua is the `---@meta` stub of the whole Lua API (10-lua-api.md).
//
//go:embed stubs/types.lua
var typesLua []byte

// MetaDir is the directory, relative to DIR, that holds the stubs; the
// language server is pointed at it as a workspace library.
const MetaDir = ".provium-meta"

// NotDirectoryError reports a DIR argument that is missing or not a directory.
type NotDirectoryError struct {
	Dir string
}

func (e *NotDirectoryError) Error() string {
	return fmt.Sprintf("`%s` is not a directory", e.Dir)
}

// luarcJSON is the language-server configuration: Lua 5.4, the stubs as a
// workspace library, and the harness globals. Nested objects rather than
// dotted keys keep it easy to merge into an existing file by hand.
const luarcJSON = `{
  "runtime": {
    "version": "Lua 5.4"
  },
  "workspace": {
    "library": [
      "` + MetaDir + `"
    ]
  },
  "diagnostics": {
    "globals": [
      "test",
      "todo",
      "wait_until",
      "json",
      "provium"
    ]
  }
}
`

// Run writes <dir>/.provium-meta/types.lua (always) and <dir>/.luarc.json
// (unless one exists and force is false, in which case it prints what to
// merge by hand and still succeeds). Progress goes to stdout.
func Run(dir string, force bool, stdout io.Writer) error {
	if dir == "" {
		dir = "."
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return &NotDirectoryError{Dir: dir}
	}

	metaDir := filepath.Join(dir, MetaDir)
	if err := os.MkdirAll(metaDir, 0o755); err != nil {
		return fmt.Errorf("create `%s`: %w", metaDir, err)
	}
	typesPath := filepath.Join(metaDir, "types.lua")
	if err := os.WriteFile(typesPath, typesLua, 0o644); err != nil {
		return fmt.Errorf("write `%s`: %w", typesPath, err)
	}
	if _, err := fmt.Fprintf(stdout, "  wrote %s\n", typesPath); err != nil {
		return fmt.Errorf("lsp-setup: write output: %w", err)
	}

	rcPath := filepath.Join(dir, ".luarc.json")
	rc := []byte(luarcJSON)
	if !force {
		_, err := os.Lstat(rcPath)
		switch {
		case err == nil:
			return printMergeHint(stdout, rcPath, rc)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("stat `%s`: %w", rcPath, err)
		}
	}
	if err := os.WriteFile(rcPath, rc, 0o644); err != nil {
		return fmt.Errorf("write `%s`: %w", rcPath, err)
	}
	if _, err := fmt.Fprintf(stdout, "  wrote %s\n", rcPath); err != nil {
		return fmt.Errorf("lsp-setup: write output: %w", err)
	}
	return nil
}

// printMergeHint explains why the existing config was kept and shows the
// settings to merge, each line indented by four spaces.
func printMergeHint(stdout io.Writer, rcPath string, rc []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "  %s already exists; not overwriting (pass --force to replace).\n", rcPath)
	b.WriteString("  to enable provium types, merge this into the existing config:\n")
	b.WriteString("\n")
	for _, line := range strings.Split(strings.TrimSuffix(string(rc), "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		return fmt.Errorf("lsp-setup: write output: %w", err)
	}
	return nil
}
