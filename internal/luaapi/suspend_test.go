package luaapi_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// TestSuspendOnARealGuest runs suspend.test.lua on profile `s3`: the
// default image's bzImage booted through SeaBIOS (see the file's header).
func TestSuspendOnARealGuest(t *testing.T) {
	cfg := guesttest.Config(t)
	s3 := *cfg.Profiles["linux"]
	s3.Name, s3.Kernel, s3.KernelBoot, s3.Firmware = "s3", guesttest.Image(t).BzImage, "bzimage", "seabios"
	cfg.Profiles["s3"] = &s3
	b, err := guest.New(guest.Options{Config: cfg, ScratchRoot: guesttest.ScratchRoot(t), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path, _ := filepath.Abs(filepath.Join("testdata", "suspend.test.lua"))
	f := discover.File{Display: "testdata/suspend.test.lua", RootRel: "suspend.test.lua", Abs: path, Canonical: path}
	res := runner.RunFile(context.Background(), f, &runner.Options{
		Config:  cfg,
		Roots:   []string{filepath.Dir(path)},
		Backend: b.ForFile,
	})
	if res.HasChunkError {
		t.Fatalf("chunk error: %s", res.ChunkError)
	}
	wantTests(t, res, 3)
	for _, tr := range res.Tests {
		if tr.Status != result.Passed {
			t.Errorf("%s: %s: %s", tr.Name, tr.Status, tr.Message)
		}
	}
}
