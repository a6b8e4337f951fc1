package agentbin

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestEnvOverrideAndBeside(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "agent")
	os.WriteFile(fake, []byte("x"), 0o755)
	l := &Locator{Getenv: func(k string) string {
		if k == EnvAgent {
			return fake
		}
		return ""
	}}
	if p, err := l.Path(context.Background()); err != nil || p != fake {
		t.Fatalf("env: %q %v", p, err)
	}
	l = &Locator{Getenv: func(string) string { return "" }, Executable: func() (string, error) { return filepath.Join(dir, "provium"), nil }}
	os.WriteFile(filepath.Join(dir, "provium-agent"), []byte("x"), 0o755)
	if p, err := l.Path(context.Background()); err != nil || p != filepath.Join(dir, "provium-agent") {
		t.Fatalf("beside: %q %v", p, err)
	}
	l = &Locator{Getenv: func(k string) string {
		if k == EnvAgent {
			return filepath.Join(dir, "missing")
		}
		return ""
	}}
	if _, err := l.Path(context.Background()); err == nil {
		t.Fatal("missing override accepted")
	}
}

func TestBuildFromSourceIsStaticAndCached(t *testing.T) {
	cache := t.TempDir()
	l := &Locator{Getenv: func(string) string { return "" }, CacheDir: cache,
		Executable: func() (string, error) { return "/nonexistent/provium", nil }}
	p, err := l.Path(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatal("agent is dynamically linked")
		}
	}
	st1, _ := os.Stat(p)
	l2 := &Locator{Getenv: func(string) string { return "" }, CacheDir: cache,
		Executable: func() (string, error) { return "/nonexistent/provium", nil }}
	p2, err := l2.Path(context.Background())
	if err != nil || p2 != p {
		t.Fatalf("second locate: %q %v", p2, err)
	}
	st2, _ := os.Stat(p2)
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("agent rebuilt although sources did not change")
	}
}

// TestWorkerIsStaticPIE builds the worker executor with every compiler
// this host has and checks each binary is a static position-independent
// executable: ET_DYN, no program interpreter, no shared library needed.
// An exec policy that demands PIE (a mitigation a test may commit on the
// agent) refuses an ET_EXEC worker.
func TestWorkerIsStaticPIE(t *testing.T) {
	root, err := (&Locator{}).sourceRoot("")
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, c := range WorkerCompilers {
		if _, err := exec.LookPath(c.CC); err != nil {
			t.Logf("%s: not installed, skipped", c.CC)
			continue
		}
		t.Run(c.CC, func(t *testing.T) {
			l := &Locator{CacheDir: t.TempDir()}
			p, err := l.buildWorkerWith(context.Background(), root, c)
			if err != nil {
				t.Fatal(err)
			}
			checkStaticPIE(t, p)
			// The same sources and flags hit the cache.
			if p2, err := l.buildWorkerWith(context.Background(), root, c); err != nil || p2 != p {
				t.Fatalf("second build: %q %v, want the cached %q", p2, err, p)
			}
		})
		built++
	}
	if built == 0 {
		t.Fatal("no C compiler for the worker on this host (make deps installs musl-tools)")
	}
}

func checkStaticPIE(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("%s: ELF type %v, want ET_DYN (a position-independent executable)", path, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s: asks for a program interpreter; the guest has no dynamic loader", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 0 {
		t.Errorf("%s: needs shared libraries %q", path, libs)
	}
	// It runs: with no channel on fd 3 the executor finds its agent gone
	// and exits 0, instead of crashing in its start-up relocation.
	if out, err := exec.Command(path).CombinedOutput(); err != nil {
		t.Errorf("%s without its channel: %v, output %q; want a clean exit", path, err, out)
	}
}
