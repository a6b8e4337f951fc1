package agentbin

import (
	"context"
	"debug/elf"
	"os"
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
