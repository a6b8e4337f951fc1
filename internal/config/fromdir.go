package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// from_dir discovery (20-cli-config.md §7.3).
const (
	fromDirKey         = "from_dir"
	profileFileName    = "profile.provium.toml"
	errFromDirEmpty    = "`%s` holds no profile: a profile is a directory containing a profile.provium.toml"
	errFromDirConflict = "profile `%s` is both written inline and discovered in `%s`; rename one"
)

// discover reads every <dir>/<name>/profile.provium.toml. Subdirectories
// without that file are skipped; a directory holding none is an error, as is
// a name also defined inline.
func (l *loader) discover(v any, inline []rawProfile) ([]rawProfile, error) {
	t := newTable(map[string]any{fromDirKey: v}, "[profiles]")
	dir, err := t.path(fromDirKey, l.dir, l.env)
	if err != nil {
		return nil, l.invalid(l.path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Kind: ReadError, Path: dir, Err: bareIOError(err)}
	}
	taken := make(map[string]bool, len(inline))
	for _, rp := range inline {
		taken[rp.name] = true
	}
	var found []rawProfile
	for _, e := range entries { // ReadDir sorts by name
		sub := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
			continue // files and dangling links are not profiles
		}
		file := filepath.Join(sub, profileFileName)
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &Error{Kind: ReadError, Path: file, Err: bareIOError(err)}
		}
		m := map[string]any{}
		if _, err := toml.Decode(string(data), &m); err != nil {
			return nil, &Error{Kind: ParseError, Path: file, Err: err}
		}
		if taken[e.Name()] {
			return nil, l.invalid(l.path, fmt.Errorf(errFromDirConflict, e.Name(), dir))
		}
		found = append(found, rawProfile{name: e.Name(), source: file, dir: sub, value: m})
	}
	if len(found) == 0 {
		return nil, l.invalid(l.path, fmt.Errorf(errFromDirEmpty, dir))
	}
	return found, nil
}
