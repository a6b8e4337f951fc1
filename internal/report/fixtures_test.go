package report

import (
	"time"

	"github.com/provium/provium/internal/result"
)

// Outcomes shared by the renderer tests, each shaped like one case the spec
// describes.

func passingFile() *result.File {
	return &result.File{
		Path: "tests/smoke.test.lua",
		Tests: []result.Test{
			{Name: "boots", Status: result.Passed, Duration: 1500 * time.Millisecond, Log: []string{"booted"}},
			{Name: "slow one", Status: result.Skipped, Message: "filtered: slow tests skipped (pass --include-slow)"},
		},
		Started:    time.Date(2026, 11, 29, 15, 4, 5, 0, time.FixedZone("x", 3600)),
		Duration:   2 * time.Second,
		Properties: map[string]string{"seed": "42", "provium_version": "0.1.0", "accel_reason": "tcg requested (--accel tcg)", "accel": "tcg"},
	}
}

func failingFile() *result.File {
	return &result.File{
		Path: "tests/net/partition.test.lua",
		Tests: []result.Test{
			{Name: "reach", Status: result.Passed},
			{
				Name:     "split-brain",
				Status:   result.Failed,
				Message:  "partition.test.lua:12: client A could not reach B\nstack traceback:\n\tpartition.test.lua:12",
				Log:      []string{"before partition", "two\nlines"},
				Line:     12,
				DeclLine: 9,
				Duration: 250 * time.Millisecond,
				Consoles: []result.Console{{VM: "a", Tail: "login:\x1b[0m ok\n"}, {VM: "dc1/b", Tail: ""}},
			},
			{Name: "todo", Status: result.Skipped, Message: "todo"},
		},
		Duration: 3 * time.Second,
	}
}

func chunkErrorFile() *result.File {
	return &result.File{
		Path:           "tests/broken.test.lua",
		ChunkError:     "tests/broken.test.lua:3: attempt to call a nil value\nstack traceback:\n\t[C]: in ?",
		HasChunkError:  true,
		ChunkErrorLine: 3,
		Duration:       100 * time.Millisecond,
	}
}

func timedOutFile() *result.File {
	return &result.File{
		Path: "tests/long.test.lua",
		Tests: []result.Test{
			{Name: "first", Status: result.Passed},
			{Name: "hangs", Status: result.Failed, Message: "file timed out after 30s", DeclLine: 7},
			{Name: "after", Status: result.Failed, Message: "not run: file timed out", DeclLine: 20},
		},
		TimedOut: true,
		Timeout:  30 * time.Second,
		Duration: 30 * time.Second,
	}
}
