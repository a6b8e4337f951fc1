package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// buildConfig loads a config with one profile `p` whose build is cmd.
func buildConfig(t *testing.T, cmd string) *Config {
	t.Helper()
	cfg, _, err := loadString(t, fmt.Sprintf("[profiles.p]\nkernel = \"k\"\ncmdline = \"c\"\nbuild = %q\n", cmd), envMap())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func logPathIn(dir string) func(string) string {
	return func(name string) string { return filepath.Join(dir, "logs", "build-"+name+".log") }
}

func TestBuildRunsOnceConcurrently(t *testing.T) {
	// The sleep widens the window in which callers overlap; correctness does
	// not depend on it.
	cfg := buildConfig(t, "echo run >> count.txt; sleep 0.2")
	b := NewBuilder(cfg, BuildOptions{LogPath: logPathIn(t.TempDir())})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Ensure(context.Background(), "p")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if err := b.Ensure(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Dir, "count.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "run\n"); n != 1 {
		t.Errorf("build ran %d times, want 1", n)
	}
}

func TestBuildEnvDirNoticeAndVerbose(t *testing.T) {
	cfg := buildConfig(t, `echo "$PROVIUM_PROFILE|$PROVIUM_OUT|$(pwd)|$KEEP" > env.txt; echo hello; printf tail`)
	p := cfg.Profiles["p"]
	logs := t.TempDir()
	var notice, verbose bytes.Buffer
	b := NewBuilder(cfg, BuildOptions{
		Notice: &notice, Verbose: &verbose, LogPath: logPathIn(logs), Environ: []string{"KEEP=yes", "PATH=" + os.Getenv("PATH")},
	})
	if err := b.Ensure(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p.Out); err != nil || !fi.IsDir() {
		t.Errorf("{out} not created: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(p.Dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "p|" + p.Out + "|" + p.Dir + "|yes\n"; string(data) != want {
		t.Errorf("env.txt = %q, want %q", data, want)
	}
	if want := "provium: building profile `p` → " + p.Out + "\n"; notice.String() != want {
		t.Errorf("notice = %q, want %q", notice.String(), want)
	}
	if want := "[build p] hello\n[build p] tail\n"; verbose.String() != want {
		t.Errorf("verbose = %q, want %q", verbose.String(), want)
	}
	log, err := os.ReadFile(logPathIn(logs)("p"))
	if err != nil || string(log) != "hello\ntail" {
		t.Errorf("log = %q, %v", log, err)
	}
}

func TestBuildFailure(t *testing.T) {
	cfg := buildConfig(t, `i=1; while [ $i -le 250 ]; do echo line$i; i=$((i+1)); done; exit 3`)
	logs := t.TempDir()
	b := NewBuilder(cfg, BuildOptions{LogPath: logPathIn(logs)})
	err := b.Ensure(context.Background(), "p")
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError", err)
	}
	if be.ExitCode != 3 || be.Signaled || len(be.Tail) != 200 || be.Tail[0] != "line51" || be.Tail[199] != "line250" {
		t.Errorf("BuildError = code %d signaled %v tail %d [%s..]", be.ExitCode, be.Signaled, len(be.Tail), be.Tail[0])
	}
	lines := strings.Split(err.Error(), "\n")
	if lines[0] != "profile `p`: build command failed (exit code 3)" {
		t.Errorf("first line = %q", lines[0])
	}
	logPath := logPathIn(logs)("p")
	if last := lines[len(lines)-1]; last != "(full output: "+logPath+")" {
		t.Errorf("last line = %q", last)
	}
	if len(lines) != 202 || lines[1] != "line51" {
		t.Errorf("error has %d lines, second %q", len(lines), lines[1])
	}
	log, _ := os.ReadFile(logPath)
	if !strings.HasPrefix(string(log), "line1\n") || strings.Count(string(log), "\n") != 250 {
		t.Errorf("log does not hold the full output")
	}
	// A failed build is not retried within the invocation.
	if err2 := b.Ensure(context.Background(), "p"); err2 != err {
		t.Errorf("second Ensure = %v, want the same failure", err2)
	}
}

func TestBuildKilledBySignal(t *testing.T) {
	cfg := buildConfig(t, `echo before; kill -9 $$`)
	b := NewBuilder(cfg, BuildOptions{LogPath: logPathIn(t.TempDir())})
	err := b.Ensure(context.Background(), "p")
	var be *BuildError
	if !errors.As(err, &be) || !be.Signaled {
		t.Fatalf("err = %v, want signaled BuildError", err)
	}
	if first := strings.SplitN(err.Error(), "\n", 2)[0]; first != "profile `p`: build command failed (killed by signal)" {
		t.Errorf("first line = %q", first)
	}
}

func TestBuildSkipped(t *testing.T) {
	cfg := buildConfig(t, "exit 1")
	b := NewBuilder(cfg, BuildOptions{NoBuild: true})
	if err := b.Ensure(context.Background(), "p"); err != nil {
		t.Errorf("NoBuild: %v", err)
	}
	cfg, _, err := loadString(t, minimalProfile, envMap())
	if err != nil {
		t.Fatal(err)
	}
	b = NewBuilder(cfg, BuildOptions{})
	if err := b.Ensure(context.Background(), "a"); err != nil {
		t.Errorf("no build command: %v", err)
	}
	if err := b.Ensure(context.Background(), "zz"); err == nil || err.Error() != "profile `zz` not found in provium.toml" {
		t.Errorf("unknown profile: %v", err)
	}
}

func TestBuildCancelledIsRetried(t *testing.T) {
	cfg := buildConfig(t, "echo run >> count.txt")
	b := NewBuilder(cfg, BuildOptions{LogPath: logPathIn(t.TempDir())})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Ensure(ctx, "p"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Ensure = %v, want context.Canceled", err)
	}
	if err := b.Ensure(context.Background(), "p"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Dir, "count.txt"))
	if err != nil || string(data) != "run\n" {
		t.Errorf("count.txt = %q, %v", data, err)
	}
}

func TestEnsureAll(t *testing.T) {
	cfg, _, err := loadString(t, `
[profiles.a]
kernel = "k"
cmdline = "c"
build = "echo a >> order.txt"
[profiles.b]
kernel = "k"
cmdline = "c"
[profiles.c]
kernel = "k"
cmdline = "c"
build = "echo c >> order.txt"
`, envMap())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(cfg, BuildOptions{LogPath: logPathIn(t.TempDir())})
	if err := b.EnsureAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Dir, "order.txt"))
	if err != nil || string(data) != "a\nc\n" {
		t.Errorf("order.txt = %q, %v", data, err)
	}
}
