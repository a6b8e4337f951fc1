// Package rerun stores and reads the list of files that did not pass in the
// last run, for --rerun-failed (20-cli-config.md §3.4).
package rerun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/provium/provium/internal/discover"
)

// EnvVar overrides where the state lives.
const EnvVar = "PROVIUM_RERUN_STATE"

// fallbackPath is used when neither EnvVar nor HOME is set.
const fallbackPath = "/tmp/provium-rerun.json"

// msgNoState is printed on stderr (exit 0) when there is nothing to re-run.
const msgNoState = "provium --rerun-failed: no prior failure state at `%s` — nothing to re-run. Run `provium <paths>` once to populate."

// NoStateMessage is the notice for an absent or empty state file at path.
func NoStateMessage(path string) string { return fmt.Sprintf(msgNoState, path) }

// Path resolves the state file: $PROVIUM_RERUN_STATE, else
// $HOME/.cache/provium/rerun.json, else /tmp/provium-rerun.json. lookup is
// os.LookupEnv in production; empty values count as unset.
func Path(lookup func(string) (string, bool)) string {
	if v, ok := lookup(EnvVar); ok && v != "" {
		return v
	}
	if home, ok := lookup("HOME"); ok && home != "" {
		return filepath.Join(home, ".cache", "provium", "rerun.json")
	}
	return fallbackPath
}

// Load reads the canonical paths saved by the last failing run. A missing
// or empty file (or an empty array) is "no state": nil, nil.
func Load(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read rerun state: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var paths []string
	if err := json.Unmarshal(data, &paths); err != nil {
		return nil, fmt.Errorf("parse rerun state `%s`: %w", path, err)
	}
	if len(paths) == 0 {
		return nil, nil
	}
	return paths, nil
}

// Save writes paths atomically: a temporary file in the same directory,
// renamed over path, so a crash or a concurrent reader never sees a torn
// file. The parent directory is created when missing.
func Save(path string, paths []string) error {
	if paths == nil {
		paths = []string{}
	}
	data, err := json.Marshal(paths)
	if err != nil {
		return fmt.Errorf("encode rerun state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save rerun state: %w", err)
	}
	if err := renameio.WriteFile(path, append(data, '\n'), 0o644, renameio.WithTempDir(dir)); err != nil {
		return fmt.Errorf("save rerun state: %w", err)
	}
	return nil
}

// Select keeps the files whose canonical path is in state, in discovery
// order. State entries are canonicalised too, so a state written through a
// symlinked path (or by upstream, which stored paths as given) still
// matches.
func Select(files []discover.File, state []string) []discover.File {
	want := make(map[string]bool, 2*len(state))
	for _, p := range state {
		want[p] = true
		if c, err := filepath.EvalSymlinks(p); err == nil {
			want[c] = true
		}
	}
	var out []discover.File
	for _, f := range files {
		if want[f.Canonical] {
			out = append(out, f)
		}
	}
	return out
}
