package luaapi_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// runRaw runs a file against real guests without judging the outcome.
func runRaw(t *testing.T, name string) *result.File {
	t.Helper()
	cfg := guesttest.Config(t)
	b, err := guest.New(guest.Options{Config: cfg, ScratchRoot: guesttest.ScratchRoot(t), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return runOn(cfg, b, name)
}

// runOn runs testdata/name on backend b (files may share one backend).
func runOn(cfg *config.Config, b *guest.Backend, name string) *result.File {
	path, _ := filepath.Abs(filepath.Join("testdata", name))
	f := discover.File{Display: "testdata/" + name, RootRel: name, Abs: path, Canonical: path}
	return runner.RunFile(context.Background(), f, &runner.Options{
		Config: cfg, Roots: []string{filepath.Dir(path)}, Backend: b.ForFile,
	})
}

func TestSnapshotsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "snapshot.test.lua")
	wantTests(t, res, 4)
}

func TestResetBetweenTestsOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "reset.test.lua")
	wantTests(t, res, 5)
}

func TestResetBetweenTestsRefusesFileScopeStreams(t *testing.T) {
	res := runRaw(t, "reset_stream.test.lua")
	want := "provium: reset_between_tests would auto-snapshot a live stream — file `testdata/reset_stream.test.lua` has live streams:\n" +
		"  - tail_file(\"/tmp/log\") at testdata/reset_stream.test.lua:4\n" +
		"Open streams inside test() bodies instead."
	if !res.HasChunkError || res.ChunkError != want {
		t.Fatalf("chunk error = %q, want %q", res.ChunkError, want)
	}
	for _, tr := range res.Tests {
		if tr.Status == result.Passed {
			t.Errorf("test %q ran after the refusal", tr.Name)
		}
	}
}

func TestResetBetweenTestsAfterATestTimeout(t *testing.T) {
	res := runRaw(t, "reset_timeout.test.lua")
	if res.HasChunkError || len(res.Tests) != 2 {
		t.Fatalf("chunk error %q, %d tests", res.ChunkError, len(res.Tests))
	}
	// The timeout's message comes first; the VMs' diagnosis follows it.
	if msg := res.Tests[0].Message; res.Tests[0].Status != result.Failed || !strings.HasPrefix(msg, "test timed out after 1s\n") || !strings.Contains(msg, "--- rt (diagnosis) ---") {
		t.Errorf("first test: %s %q", res.Tests[0].Status, res.Tests[0].Message)
	}
	if res.Tests[1].Status != result.Passed {
		t.Errorf("second test: %s %q", res.Tests[1].Status, res.Tests[1].Message)
	}
}
