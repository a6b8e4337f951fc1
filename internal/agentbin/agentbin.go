// Package agentbin finds the guest agent binary that Provium injects into
// every guest. Provium ships the agent next to its own binary (make build
// puts bin/provium-agent beside bin/provium); when running from a source
// checkout (go test, go run) it builds the agent once, static and without
// cgo, and caches the result by the hash of the agent's sources.
package agentbin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// EnvAgent names an agent binary to use instead of searching for one.
const EnvAgent = "PROVIUM_AGENT"

// EnvWorker names a worker executor binary (provium-worker) to use instead
// of searching for one.
const EnvWorker = "PROVIUM_WORKER"

// WorkerName is the worker executor's file name, beside the agent's.
const WorkerName = "provium-worker"

// workerSourceDir holds the worker executor's C source.
const workerSourceDir = "cmd/provium-worker"

const modulePath = "github.com/provium/provium"

// sourceDirs are the packages compiled into the agent; their contents key
// the build cache.
var sourceDirs = []string{"cmd/provium-agent", "internal/agent", "internal/proto"}

// Locator finds (or builds) the agent once per process.
type Locator struct {
	// Getenv and Executable are injectable for tests.
	Getenv     func(string) string
	Executable func() (string, error)
	// CacheDir holds builds from source (default ~/.cache/provium/agent).
	CacheDir string

	once sync.Once
	path string
	err  error

	workerOnce sync.Once
	workerPath string
	workerErr  error
}

// Path returns the path of the agent binary.
func (l *Locator) Path(ctx context.Context) (string, error) {
	l.once.Do(func() { l.path, l.err = l.locate(ctx) })
	return l.path, l.err
}

func (l *Locator) getenv(k string) string {
	if l.Getenv != nil {
		return l.Getenv(k)
	}
	return os.Getenv(k)
}

func (l *Locator) locate(ctx context.Context) (string, error) {
	if p := l.getenv(EnvAgent); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("agent: %s=%s: %w", EnvAgent, p, err)
		}
		return p, nil
	}
	exe := os.Executable
	if l.Executable != nil {
		exe = l.Executable
	}
	self, err := exe()
	if err == nil {
		beside := filepath.Join(filepath.Dir(self), "provium-agent")
		if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() {
			return beside, nil
		}
	}
	root, err := l.sourceRoot(self)
	if err != nil {
		return "", err
	}
	return l.build(ctx, root)
}

// sourceRoot finds a checkout of this module above the working directory or
// the executable.
func (l *Locator) sourceRoot(self string) (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if self != "" {
		starts = append(starts, filepath.Dir(self))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("agent: no provium-agent binary found next to the provium binary and no source checkout to build it from; " +
		"run `make build`, or set " + EnvAgent + " to the agent binary")
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == modulePath
		}
	}
	return false
}

// BuildFlags are the go build flags of the agent (besides CGO_ENABLED=0).
// Stripping the symbol tables makes the binary a third smaller, and every
// byte of it is unpacked by the guest kernel at each boot; stack traces
// still work (they use pclntab, which stays).
var BuildFlags = []string{"-trimpath", "-ldflags=-s -w"}

// SourceHash hashes the agent's sources, the module files and BuildFlags.
func SourceHash(root string) (string, error) {
	h := sha256.New()
	// The flags are part of the identity: a binary built otherwise is
	// another binary.
	fmt.Fprintf(h, "flags %q\x00", BuildFlags)
	var files []string
	for _, f := range []string{"go.mod", "go.sum"} {
		files = append(files, filepath.Join(root, f))
	}
	for _, d := range sourceDirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("agent: hash sources: %w", err)
		}
	}
	sort.Strings(files)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("agent: hash sources: %w", err)
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("agent: hash sources: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func (l *Locator) cacheDir() string {
	if l.CacheDir != "" {
		return l.CacheDir
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "provium", "agent")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("provium-agent-%d", os.Getuid()))
}

// build compiles the agent from the checkout at root into the cache.
func (l *Locator) build(ctx context.Context, root string) (string, error) {
	sum, err := SourceHash(root)
	if err != nil {
		return "", err
	}
	dir := l.cacheDir()
	out := filepath.Join(dir, "provium-agent-"+sum)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("agent: create cache %s: %w", dir, err)
	}
	tmp := fmt.Sprintf("%s.tmp.%d", out, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, BuildFlags...), "-o", tmp, "./cmd/provium-agent")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("agent: build from %s: %v\n%s", root, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("agent: install build: %w", err)
	}
	return out, nil
}

// WorkerPath returns the path of the worker executor: the small static C
// program behind vm:spawn_worker (a Go process cannot be single-threaded).
// It is found like the agent (PROVIUM_WORKER, beside PROVIUM_AGENT, beside
// the provium binary) or built from a source checkout, cached by the hash
// of its source and compiler.
func (l *Locator) WorkerPath(ctx context.Context) (string, error) {
	l.workerOnce.Do(func() { l.workerPath, l.workerErr = l.locateWorker(ctx) })
	return l.workerPath, l.workerErr
}

func (l *Locator) locateWorker(ctx context.Context) (string, error) {
	if p := l.getenv(EnvWorker); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("worker: %s=%s: %w", EnvWorker, p, err)
		}
		return p, nil
	}
	var dirs []string
	if p := l.getenv(EnvAgent); p != "" {
		dirs = append(dirs, filepath.Dir(p))
	}
	exe := os.Executable
	if l.Executable != nil {
		exe = l.Executable
	}
	self, err := exe()
	if err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	for _, d := range dirs {
		beside := filepath.Join(d, WorkerName)
		if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() {
			return beside, nil
		}
	}
	root, err := l.sourceRoot(self)
	if err != nil {
		return "", fmt.Errorf("worker: %w", err)
	}
	return l.buildWorker(ctx, root)
}

// WorkerCompiler is one way to build the worker executor.
type WorkerCompiler struct {
	// CC is the compiler driver; Flags go before the output and source.
	CC    string
	Flags []string
	// MuslStart links musl's static-PIE start file (rcrt1.o) in place of
	// the driver's own: Debian's musl-gcc specs know no -static-pie and
	// would otherwise produce a binary that asks for a dynamic loader.
	MuslStart bool
}

// WorkerCompilers are tried in order: musl makes a ~60 KiB static binary
// (Debian's musl-tools), glibc's static one is ~13 times larger. Both are
// static PIEs (ET_DYN, no interpreter): a process whose exec policy demands
// position-independent executables (a kernel mitigation a test may commit on
// the agent) can still start workers.
var WorkerCompilers = []WorkerCompiler{
	{CC: "musl-gcc", MuslStart: true, Flags: []string{"-Os", "-s", "-Wall", "-fPIE", "-static-pie", "-nostartfiles",
		"-Wl,-static,--no-dynamic-linker,-z,text"}},
	{CC: "cc", Flags: []string{"-Os", "-s", "-Wall", "-pthread", "-fPIE", "-static-pie"}},
}

// muslStartFile finds musl's rcrt1.o: beside the Scrt1.o that the musl-gcc
// driver links (its link line, printed by -###, names it).
func muslStartFile(ctx context.Context, cc string) (string, error) {
	out, _ := exec.CommandContext(ctx, cc, "-###", "provium-probe.o").CombinedOutput()
	for _, f := range strings.Fields(string(out)) {
		f = strings.Trim(f, `"'`)
		if filepath.Base(f) != "Scrt1.o" {
			continue
		}
		p := filepath.Join(filepath.Dir(f), "rcrt1.o")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("worker: %s links %s but its static-PIE start file is missing: %w", cc, f, err)
		}
		return p, nil
	}
	return "", fmt.Errorf("worker: cannot find musl's start files: `%s -###` names no Scrt1.o (is musl-tools installed?)", cc)
}

// args are the compiler arguments that build src into out.
func (c WorkerCompiler) args(ctx context.Context, src, out string) ([]string, error) {
	args := append([]string{}, c.Flags...)
	if c.MuslStart {
		start, err := muslStartFile(ctx, c.CC)
		if err != nil {
			return nil, err
		}
		args = append(args, start)
	}
	return append(args, "-o", out, src), nil
}

// buildWorker compiles cmd/provium-worker into the cache with the first
// compiler found.
func (l *Locator) buildWorker(ctx context.Context, root string) (string, error) {
	for _, c := range WorkerCompilers {
		if _, err := exec.LookPath(c.CC); err == nil {
			return l.buildWorkerWith(ctx, root, c)
		}
	}
	return "", errors.New("worker: no C compiler to build provium-worker (install musl-tools, or gcc and libc6-dev; `make build` does)")
}

func (l *Locator) buildWorkerWith(ctx context.Context, root string, c WorkerCompiler) (string, error) {
	src := filepath.Join(root, workerSourceDir, "worker.c")
	dir := l.cacheDir()
	// The arguments name the output; hash them with a placeholder for it.
	key, err := c.args(ctx, src, "OUT")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "cc %q %q\x00", c.CC, key)
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("worker: %w", err)
	}
	h.Write(b)
	out := filepath.Join(dir, WorkerName+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("worker: create cache %s: %w", dir, err)
	}
	tmp := fmt.Sprintf("%s.tmp.%d", out, os.Getpid())
	args, err := c.args(ctx, src, tmp)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, c.CC, args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("worker: build %s with %s: %v\n%s", src, c.CC, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("worker: install build: %w", err)
	}
	return out, nil
}
