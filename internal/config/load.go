package config

import (
	"fmt"
	"sort"

	"github.com/BurntSushi/toml"
)

// Warning text for keys Provium does not know (typos, newer options).
const warnUnknownKey = "warning: %s: unknown key `%s`"

// loader carries the state of one Load: where the file is, the environment,
// and the warnings found so far.
type loader struct {
	path     string // as named by the caller
	dir      string // absolute directory of path
	env      Env
	warnings []string
}

// rawProfile is a profile table before validation, with where it came from.
type rawProfile struct {
	name   string
	source string // file defining it (provium.toml or a from_dir profile file)
	dir    string // base for its relative paths
	prefix string // dotted-key prefix of its keys in source, for warnings
	value  any
}

// load runs the steps of 20-cli-config.md §7.1 after the file was read:
// parse → from_dir → validate ([provium], then profiles by name) → {out}.
func (l *loader) load(data []byte) (*Config, error) {
	raw := map[string]any{}
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, &Error{Kind: ParseError, Path: l.path, Err: err}
	}
	cfg := emptyConfig(l.path, l.dir, l.env)
	cfg.Exists = true

	top := newTable(raw, "")
	provium, _ := top.get("provium")
	profiles, _ := top.get("profiles")
	l.warnUnknown(l.path, "", top)

	raws, err := l.collectProfiles(profiles)
	if err != nil {
		return nil, err
	}
	if err := l.provium(cfg, provium); err != nil {
		return nil, l.invalid(l.path, err)
	}
	sort.Slice(raws, func(i, j int) bool { return raws[i].name < raws[j].name })
	for _, rp := range raws {
		p, err := l.profile(rp)
		if err != nil {
			return nil, l.invalid(rp.source, err)
		}
		cfg.Profiles[p.Name] = p
	}
	cfg.Warnings = l.warnings
	return cfg, nil
}

func (l *loader) invalid(path string, err error) error {
	return &Error{Kind: InvalidError, Path: path, Err: err}
}

// warnUnknown records a warning for every key of t nobody read.
func (l *loader) warnUnknown(file, prefix string, t *table) {
	for _, k := range t.unknown() {
		l.warnings = append(l.warnings, fmt.Sprintf(warnUnknownKey, file, prefix+k))
	}
}

// collectProfiles gathers inline profiles and, when `[profiles] from_dir` is
// set, the discovered ones.
func (l *loader) collectProfiles(v any) ([]rawProfile, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, l.invalid(l.path, fmt.Errorf("`profiles` %s, got `%s`", probTable, render(v)))
	}
	var (
		raws    []rawProfile
		fromDir any
		hasDir  bool
	)
	for _, name := range sortedKeys(m) {
		if name == fromDirKey {
			fromDir, hasDir = m[name], true
			continue
		}
		raws = append(raws, rawProfile{
			name:   name,
			source: l.path,
			dir:    l.dir,
			prefix: "profiles." + name + ".",
			value:  m[name],
		})
	}
	if !hasDir {
		return raws, nil
	}
	found, err := l.discover(fromDir, raws)
	if err != nil {
		return nil, err
	}
	return append(raws, found...), nil
}
