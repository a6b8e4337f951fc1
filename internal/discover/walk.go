package discover

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File-name suffixes that decide what a Lua file is (20-cli-config.md §2).
const (
	testSuffix    = ".test.lua"
	fixtureSuffix = ".fixture.lua"
	luaSuffix     = ".lua"
)

// fileKind classifies a Lua file found under a scan entry or root.
type fileKind int

const (
	// kindTest is a *.test.lua file: it runs.
	kindTest fileKind = iota + 1
	// kindFixture is a *.fixture.lua file: loaded only by name.
	kindFixture
	// kindHelper is any other *.lua file: reachable through require.
	kindHelper
)

// kindOf classifies a file name; ok is false for non-Lua files.
func kindOf(name string) (fileKind, bool) {
	switch {
	case strings.HasSuffix(name, testSuffix):
		return kindTest, true
	case strings.HasSuffix(name, fixtureSuffix):
		return kindFixture, true
	case strings.HasSuffix(name, luaSuffix):
		return kindHelper, true
	}
	return 0, false
}

// luaFile is one Lua file found by walk.
type luaFile struct {
	rel  string // slash-separated, relative to the walked directory
	abs  string // walked directory joined with rel (symlinks not resolved)
	kind fileKind
}

// walk lists every Lua file under dir, recursively, sorted bytewise by
// relative path. Symlinked files are followed, symlinked directories are
// not (so the walk cannot loop), and directories whose name starts with "."
// are skipped; dir itself is always entered, which is how a dot-directory
// named explicitly gets scanned. A subdirectory that vanishes mid-walk is
// ignored so that --watch rescans tolerate concurrent edits.
func walk(dir string) ([]luaFile, error) {
	var out []luaFile
	if err := walkInto(dir, "", &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

func walkInto(root, rel string, out *[]luaFile) error {
	dir := filepath.Join(root, rel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if rel != "" && isMissing(err) {
			return nil
		}
		return fmt.Errorf("read directory %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		mode := e.Type()
		if mode.IsDir() {
			if strings.HasPrefix(name, ".") {
				continue
			}
			if err := walkInto(root, childRel, out); err != nil {
				return err
			}
			continue
		}
		kind, ok := kindOf(name)
		if !ok {
			continue
		}
		abs := filepath.Join(root, childRel)
		if mode&os.ModeSymlink != 0 {
			// Follow the link but only accept a regular file behind it;
			// dangling links and links to directories are ignored.
			info, err := os.Stat(abs)
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
		} else if !mode.IsRegular() {
			continue
		}
		*out = append(*out, luaFile{rel: childRel, abs: abs, kind: kind})
	}
	return nil
}
