// Package discover finds the *.test.lua files a run covers, the effective
// test roots and the fixtures under them (20-cli-config.md §2), and narrows
// the file list by --filter, --shard and --since (§3.1–3.8).
package discover

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options says what to scan.
type Options struct {
	// Paths are the PATH arguments, in command-line order. When non-empty
	// they are the scan set and every one must exist.
	Paths []string
	// Roots are `[provium] roots`, already resolved against the config
	// file's directory (relative ones are taken against Cwd). They are the
	// scan set when Paths is empty; a missing one is a warning.
	Roots []string
	// Cwd is the working directory; empty means os.Getwd.
	Cwd string
}

// File is one discovered *.test.lua file.
type File struct {
	// Display is cwd-relative when the file is under the cwd, else
	// absolute; it is what reports print.
	Display string
	// RootRel is relative to the scan entry that found the file; for a file
	// named directly it equals Display. Events and --filter use it.
	RootRel string
	// Abs is the absolute path, symlinks not resolved.
	Abs string
	// Canonical is Abs with symlinks resolved; it identifies the file for
	// deduplication and rerun state.
	Canonical string
	// Entry is the scan entry that found the file, as written (or "." for
	// the implicit cwd).
	Entry string
}

// Fixture is one *.fixture.lua file under an effective root.
type Fixture struct {
	// Name is the root-relative path minus ".fixture.lua".
	Name string
	// Root is the effective root it was found under (absolute).
	Root string
	File
}

// Set is the result of one discovery.
type Set struct {
	// Files are the test files in discovery order (30-runtime.md B4).
	Files []File
	// Roots are the effective roots, absolute, in order: the configured
	// roots, else the scan set's directories (a file argument contributes
	// its directory).
	Roots []string
	// Fixtures are the fixtures under Roots; when two roots hold the same
	// name the first root wins, as in fixture lookup.
	Fixtures []Fixture
	// Warnings are non-fatal problems (unusable configured roots), without
	// the "provium: warning: " prefix.
	Warnings []string

	// rootLua is every *.lua file under Roots, for Fingerprint.
	rootLua []string
}

// implicitEntry names the cwd when it is scanned because nothing else was
// given.
const implicitEntry = "."

// Discover scans opts and returns the test files, roots and fixtures.
// A bad PATH argument yields a *PathError.
func Discover(opts Options) (*Set, error) {
	cwd := opts.Cwd
	if cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("discover: current directory: %w", err)
		}
		cwd = wd
	}
	cwd = filepath.Clean(cwd)

	s := &scanner{cwd: cwd, seen: map[string]bool{}, walks: map[string][]luaFile{}}
	switch {
	case len(opts.Paths) > 0:
		for _, p := range opts.Paths {
			if err := s.scanEntry(p, true); err != nil {
				return nil, err
			}
		}
	case len(opts.Roots) > 0:
		for _, r := range opts.Roots {
			if err := s.scanEntry(r, false); err != nil {
				return nil, err
			}
		}
	default:
		if err := s.scanEntry(implicitEntry, true); err != nil {
			return nil, err
		}
	}

	set := &Set{Files: s.files, Warnings: s.warnings}
	if len(opts.Roots) > 0 {
		for _, r := range opts.Roots {
			set.Roots = appendUnique(set.Roots, absPath(cwd, r))
		}
	} else {
		set.Roots = s.scanDirs
	}
	if err := s.collectRootFiles(set); err != nil {
		return nil, err
	}
	return set, nil
}

// scanner carries the state of one Discover call.
type scanner struct {
	cwd      string
	files    []File
	seen     map[string]bool // canonical paths already listed
	scanDirs []string        // directories of the scan set, unique, in order
	warnings []string
	walks    map[string][]luaFile // walk results by directory, so roots equal to scanned dirs are walked once
}

// scanEntry adds the test files of one scan entry. explicit entries (PATH
// arguments, the implicit cwd) must exist; configured roots only warn.
func (s *scanner) scanEntry(entry string, explicit bool) error {
	abs := absPath(s.cwd, entry)
	info, err := os.Stat(abs)
	if err != nil {
		if explicit {
			if isMissing(err) {
				return &PathError{Path: entry, Problem: PathMissing}
			}
			return &PathError{Path: entry, Problem: PathUnreadable, Err: causeOf(err)}
		}
		if isMissing(err) {
			s.warnings = append(s.warnings, fmt.Sprintf(msgRootMissing, entry))
		} else {
			s.warnings = append(s.warnings, fmt.Sprintf(msgRootStatError, entry, causeOf(err)))
		}
		return nil
	}

	if info.IsDir() {
		found, err := s.walk(abs)
		if err != nil {
			return fmt.Errorf("discover: scan `%s`: %w", entry, err)
		}
		s.scanDirs = appendUnique(s.scanDirs, abs)
		for _, f := range found {
			if f.kind == kindTest {
				s.add(File{RootRel: f.rel, Abs: f.abs, Entry: entry})
			}
		}
		return nil
	}

	if !info.Mode().IsRegular() || !strings.HasSuffix(filepath.Base(abs), testSuffix) {
		if explicit {
			return &PathError{Path: entry, Problem: PathNotTestFile}
		}
		s.warnings = append(s.warnings, fmt.Sprintf(msgRootNotDir, entry))
		return nil
	}
	s.scanDirs = appendUnique(s.scanDirs, filepath.Dir(abs))
	s.add(File{Abs: abs, Entry: entry})
	return nil
}

// add fills the derived paths of f and appends it unless its canonical path
// was seen already. An empty RootRel means "named directly".
func (s *scanner) add(f File) {
	f.Display = displayPath(s.cwd, f.Abs)
	if f.RootRel == "" {
		f.RootRel = f.Display
	}
	f.Canonical = canonicalPath(f.Abs)
	if s.seen[f.Canonical] {
		return
	}
	s.seen[f.Canonical] = true
	s.files = append(s.files, f)
}

func (s *scanner) walk(dir string) ([]luaFile, error) {
	if found, ok := s.walks[dir]; ok {
		return found, nil
	}
	found, err := walk(dir)
	if err != nil {
		return nil, err
	}
	s.walks[dir] = found
	return found, nil
}

// collectRootFiles lists the fixtures and all Lua files under set.Roots.
// Roots that are not directories contribute nothing; Discover has already
// warned about them when they were the scan set.
func (s *scanner) collectRootFiles(set *Set) error {
	names := map[string]bool{}
	for _, root := range set.Roots {
		info, err := os.Stat(root)
		if err != nil || !info.IsDir() {
			continue
		}
		found, err := s.walk(root)
		if err != nil {
			return fmt.Errorf("discover: scan root `%s`: %w", root, err)
		}
		for _, f := range found {
			set.rootLua = append(set.rootLua, f.abs)
			if f.kind != kindFixture {
				continue
			}
			name := strings.TrimSuffix(f.rel, fixtureSuffix)
			if names[name] {
				continue
			}
			names[name] = true
			set.Fixtures = append(set.Fixtures, Fixture{
				Name: name,
				Root: root,
				File: File{
					Display:   displayPath(s.cwd, f.abs),
					RootRel:   f.rel,
					Abs:       f.abs,
					Canonical: canonicalPath(f.abs),
					Entry:     root,
				},
			})
		}
	}
	return nil
}

// absPath makes p absolute against cwd and cleans it.
func absPath(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// displayPath is abs relative to cwd when it lies under cwd, else abs.
func displayPath(cwd, abs string) string {
	rel, err := filepath.Rel(cwd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return abs
	}
	return rel
}

// canonicalPath resolves symlinks; if that fails (the file vanished) the
// absolute path stands in so the file still has an identity.
func canonicalPath(abs string) string {
	c, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return abs
	}
	return c
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
