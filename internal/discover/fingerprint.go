package discover

import (
	"os"
	"slices"
)

// stamp is what --watch compares per path.
type stamp struct {
	exists  bool
	size    int64
	modNano int64
}

// Fingerprint is a snapshot of everything whose change should re-trigger a
// --watch run: the discovered file set, and the size and mtime of every test
// file, every *.lua under the roots and any extra path (the config file).
type Fingerprint struct {
	files  []string // canonical paths of the test files, discovery order
	stamps map[string]stamp
}

// TakeFingerprint stats the files of set and the extra paths now. Missing
// paths are recorded as absent, so their appearance counts as a change.
func TakeFingerprint(set *Set, extra ...string) Fingerprint {
	fp := Fingerprint{stamps: map[string]stamp{}}
	record := func(p string) {
		if _, done := fp.stamps[p]; done {
			return
		}
		info, err := os.Stat(p)
		if err != nil {
			fp.stamps[p] = stamp{}
			return
		}
		fp.stamps[p] = stamp{exists: true, size: info.Size(), modNano: info.ModTime().UnixNano()}
	}
	if set != nil {
		for _, f := range set.Files {
			fp.files = append(fp.files, f.Canonical)
			record(f.Abs)
		}
		for _, p := range set.rootLua {
			record(p)
		}
	}
	for _, p := range extra {
		if p != "" {
			record(p)
		}
	}
	return fp
}

// Equal reports whether nothing watched changed between fp and other.
func (fp Fingerprint) Equal(other Fingerprint) bool {
	if !slices.Equal(fp.files, other.files) || len(fp.stamps) != len(other.stamps) {
		return false
	}
	for p, s := range fp.stamps {
		if o, ok := other.stamps[p]; !ok || o != s {
			return false
		}
	}
	return true
}
