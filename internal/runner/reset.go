package runner

import (
	"fmt"
)

// msgResetFailed fails the tests after a baseline restore that did not work.
const msgResetFailed = "not run: reset_between_tests could not restore the baseline: %v"

// takeBaseline snapshots the root lab after the top-level chunk when the
// file set `provium.reset_between_tests = true` (10-lua-api.md §2.6,
// 30-runtime.md A12). A live file-scope stream, or a failing snapshot, is a
// chunk error; false then stops the file.
func (fr *fileRun) takeBaseline() bool {
	if !fr.api.File.ResetBetweenTests {
		return true
	}
	// The refusal is the file's contract (10-lua-api.md §2.6), whatever
	// its number of tests.
	if msg := fr.api.ResetRefusal(fr.file.Display); msg != "" {
		fr.chunkError(msg, 0)
		return false
	}
	if len(fr.tests) < 2 {
		// With fewer than two tests no restore would ever run.
		return true
	}
	dir, err := fr.api.SnapshotLab(fr.L, fr.root, "")
	if err != nil {
		fr.chunkError(fmt.Sprintf("provium: reset_between_tests: baseline snapshot failed: %v", err), 0)
		return false
	}
	fr.baseline = dir
	return true
}

// afterTest restores the baseline after test i (any outcome; its scope is
// already closed), except after the last test. A test timeout tore the file
// lab down; the restore brings it back, so the later tests run. It returns
// the tornDownBy value the loop goes on with.
func (fr *fileRun) afterTest(i int, timedOut bool, tornDownBy string) string {
	if fr.baseline == "" || i == len(fr.tests)-1 || fr.resetFailed != nil {
		return tornDownBy
	}
	if _, err := fr.api.RestoreLab(fr.L, fr.root, fr.baseline); err != nil {
		fr.resetFailed = err
		return tornDownBy
	}
	if timedOut {
		return ""
	}
	return tornDownBy
}
