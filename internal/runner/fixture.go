package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/proto"
	"github.com/provium/provium/internal/snapfile"
	"github.com/provium/provium/internal/vmm"
)

// Fixtures is the run's fixture runtime (30-runtime.md A), shared by every
// file of the run: one keyer (keys are memoised per run) and one cache (it
// holds the in-process build gates).
type Fixtures struct {
	Cache  *fixture.Cache
	Keyer  *fixture.Keyer
	Argv   []string
	Warn   func(line string)
	Events luaapi.FixtureEvents
}

// installFixtures gives the file's API its fixture environment.
func (fr *fileRun) installFixtures() {
	fx := fr.opts.Fixtures
	if fx == nil {
		return
	}
	fr.api.SetFixtures(&luaapi.FixtureEnv{
		Cache:  fx.Cache,
		Keyer:  fx.Keyer,
		Argv:   fx.Argv,
		Warn:   fx.Warn,
		Events: fx.Events,
		Build: func(ctx context.Context, src fixture.Source) (luaapi.Built, error) {
			return buildFixture(ctx, fr.opts, src)
		},
	})
}

// fixtureDisplay is how a fixture's chunk is named (errors, stream
// creation sites): relative to the working directory like test files, so
// that relative host paths (push_file) resolve against the fixture's
// directory; absolute when it lies outside.
func fixtureDisplay(src fixture.Source) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, src.Path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return src.Path
}

// buildFixture runs a fixture chunk in a fresh Lua state set up like a test
// file's top level with its own root lab (30-runtime.md A3), checks that it
// returned a snapshot and shuts the build lab down. The snapshot (a
// temporary of the builder) stays until the returned Cleanup.
func buildFixture(ctx context.Context, opts *Options, src fixture.Source) (out luaapi.Built, err error) {
	display := fixtureDisplay(src)
	fr := &fileRun{opts: opts, file: File{Display: display, RootRel: display, Abs: src.Path, Canonical: src.Path},
		names: map[string]bool{}, chunkName: display}
	st, err := lua.NewState()
	if err != nil {
		return out, err
	}
	fr.state, fr.L = st, st.Main()
	st.SetContext(ctx)
	stopCtx := context.AfterFunc(ctx, func() { st.Interrupt("fixture build cancelled") })
	defer stopCtx()
	closed := false
	finish := func() {
		if closed {
			return
		}
		closed = true
		fr.closeScope(fr.root)
		if fr.api != nil {
			_ = fr.api.CloseSnapshots()
		}
		st.Close()
	}
	defer func() {
		if err != nil {
			finish()
		}
	}()
	if err := fr.setup(); err != nil {
		return out, err
	}
	source, err := readSource(src.Path)
	if err != nil {
		return out, fmt.Errorf("cannot read %s: %v", display, err)
	}
	L := fr.L
	if err := L.Load(source, "@"+display); err != nil {
		return out, err
	}
	if err := L.PCallHandler(0, 1, fr.handlerIndex); err != nil {
		return out, ctxErr(ctx, err)
	}
	kind, path, what := luaapi.SnapshotResult(L, -1)
	L.Pop(1)
	if kind == "" {
		return out, fmt.Errorf("fixture `%s` must return vm:snapshot() or provium:snapshot(), got %s", src.Name, what)
	}
	// Shut the build lab down now; the snapshot stays until Cleanup.
	fr.closeScope(fr.root)
	return luaapi.Built{Kind: kind, Path: path, Cleanup: finish}, nil
}

// ctxErr prefers the cancellation cause (a watchdog's message).
func ctxErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
		return c
	}
	return err
}

// FixtureSetup is what NewFixtures needs besides the config.
type FixtureSetup struct {
	Roots []string
	Accel string // "kvm" or "tcg": part of the platform key item
	QEMU  string // binary whose --version is keyed; "" = vmm.DefaultQEMU
	// AgentPath is the agent binary in use ("" = not keyed by content).
	AgentPath string
	Argv      []string
	Warn      func(line string)
}

// NewFixtures opens the fixture cache of cfg and the run's keyer (30-runtime.md
// A5-A6). It does not create the cache directory (preflight does).
func NewFixtures(cfg *config.Config, s FixtureSetup) *Fixtures {
	cacheDir := cfg.CacheDir()
	var profiles []fixture.Profile
	for _, name := range cfg.ProfileNames() {
		p, err := cfg.Profile(name)
		if err != nil {
			continue
		}
		kernel, err := p.ResolveKernel()
		if err != nil {
			kernel = ""
		}
		fp := fixture.Profile{Name: name, Kernel: kernel, Initrd: p.Initrd}
		for _, d := range p.Disks {
			fp.Disks = append(fp.Disks, d.Path)
		}
		profiles = append(profiles, fp)
	}
	keyer := fixture.NewKeyer(fixture.KeyerConfig{
		Roots:       s.Roots,
		PackagePath: packagePath(s.Roots),
		Protocol:    proto.ProtocolVersion,
		Profiles:    profiles,
		Platform:    platform(s),
		Identities:  fixture.LoadIdentityCache(cacheDir),
	})
	return &Fixtures{Cache: fixture.New(cacheDir), Keyer: keyer, Argv: s.Argv, Warn: s.Warn}
}

// packagePath is the part of package.path the roots contribute (setPackagePath).
func packagePath(roots []string) string {
	var parts []string
	for _, r := range roots {
		parts = append(parts, filepath.Join(r, "?.lua"), filepath.Join(r, "?", "init.lua"))
	}
	return strings.Join(parts, ";")
}

// platform is key item 8: what a migration stream can only be loaded into.
func platform(s FixtureSetup) fixture.Platform {
	p := fixture.Platform{SnapshotFormat: snapfile.FormatVersion, Accel: s.Accel, Machine: string(vmm.DefaultMachine), PCILayout: vmm.PCILayout}
	bin := s.QEMU
	if bin == "" {
		bin = vmm.DefaultQEMU
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		p.QEMUVersion, _, _ = strings.Cut(string(out), "\n")
	}
	if s.AgentPath != "" {
		if f, err := os.Open(s.AgentPath); err == nil {
			h := sha256.New()
			if _, err := io.Copy(h, f); err == nil {
				p.AgentSHA256 = hex.EncodeToString(h.Sum(nil))
			}
			f.Close()
		}
	}
	return p
}

// msgWaitingForBuild is the stderr notice of `provium fixture build|rebuild`
// finding the fixture's build lock held (by a test run's file, else the
// holder's lock line).
const msgWaitingForBuild = "provium: fixture `%s`: waiting for the build held by %s"

// EnsureFixture is `provium fixture build|rebuild`: it builds the named
// fixture into the cache unless an entry exists (rebuild: evicts it
// first), without restoring it anywhere. The fixture's kind is unknown
// until its chunk ran, so the cache holds both build locks of the key
// meanwhile (fixture.Cache.Ensure): a test run's vm_fixture or
// lab_fixture of it waits for this build, and this one for theirs. It
// returns the entry's kind and path and whether it was built now.
func EnsureFixture(ctx context.Context, opts *Options, name string, rebuild bool) (kind fixture.Kind, path string, built bool, err error) {
	fx := opts.Fixtures
	src, key, err := fx.Keyer.Fixture(name)
	if err != nil {
		return "", "", false, err
	}
	req := fixture.EnsureRequest{Name: src.Name, Key: key, Rebuild: rebuild,
		Info: fixture.LockInfo{Fixture: src.Name, Argv: fx.Argv, Started: time.Now()}}
	if fx.Warn != nil {
		req.Waiting = func(heldBy string) { fx.Warn(fmt.Sprintf(msgWaitingForBuild, src.Name, heldBy)) }
	}
	kind, built, err = fx.Cache.Ensure(ctx, req, func(ctx context.Context) (fixture.Kind, error) {
		out, err := buildFixture(ctx, opts, src)
		if out.Cleanup != nil {
			defer out.Cleanup()
		}
		if err != nil {
			return "", err
		}
		if _, err := luaapi.PackBuilt(fx.Cache, key, out); err != nil {
			return "", err
		}
		return out.Kind, nil
	})
	if err != nil {
		return "", "", false, err
	}
	return kind, fx.Cache.EntryPath(kind, key), built, nil
}

// ScanKeyer is a keyer for discovery's static scan of test files
// (fixture_refs and declared claims of file_discovered) when the run has
// no fixture runtime.
func ScanKeyer(roots []string) *fixture.Keyer {
	return fixture.NewKeyer(fixture.KeyerConfig{Roots: roots, PackagePath: packagePath(roots)})
}
