package config

import (
	"errors"
	"path/filepath"
	"strings"
)

// errNoHome is returned by resolvePath when a `~/` path meets an unset $HOME.
var errNoHome = errors.New("$HOME is not set")

// resolvePath expands a leading `~/` to $HOME and makes a relative path
// absolute against base (the directory of the file that holds it).
func resolvePath(p, base string, env Env) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, ok := env.lookup("HOME")
		if !ok {
			return "", errNoHome
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p), nil
}

// path reads an optional path key and resolves it against base.
func (t *table) path(key, base string, env Env) (string, error) {
	s, ok, err := t.str(key, probPath, true)
	if err != nil || !ok {
		return "", err
	}
	r, err := resolvePath(s, base, env)
	if err != nil {
		return "", t.problem(key, probHome, s)
	}
	return r, nil
}
