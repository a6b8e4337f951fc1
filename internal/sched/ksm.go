package sched

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KSMDir is where the host's KSM knobs live.
const KSMDir = "/sys/kernel/mm/ksm"

// KSM lines (after `provium: `), 30-runtime.md B10.
const (
	MsgKSMTuned    = "ksm tuned (run = on, pages_to_scan = 1000, sleep_millisecs = 100)"
	msgKSMNotTuned = "ksm not tuned (%s)"
)

// ksmSettings are written in this order: scanning parameters first, so
// KSM never runs with the old ones.
var ksmSettings = [][2]string{
	{"pages_to_scan", "1000"},
	{"sleep_millisecs", "100"},
	{"run", "1"},
}

// TuneKSM makes the best-effort host KSM tuning of 30-runtime.md B10 in dir
// (KSMDir on a real host) and returns the line to print (without
// `provium: `). It never fails: a missing or read-only dir is reported in
// the line. Values are not restored at exit.
func TuneKSM(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "run")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Sprintf(msgKSMNotTuned, dir+" does not exist")
		}
		return fmt.Sprintf(msgKSMNotTuned, err)
	}
	for _, kv := range ksmSettings {
		p := filepath.Join(dir, kv[0])
		if err := writeExisting(p, kv[1]+"\n"); err != nil {
			return fmt.Sprintf(msgKSMNotTuned, fmt.Sprintf("writing %s: %v", p, unwrapPathErr(err)))
		}
	}
	return MsgKSMTuned
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeExisting writes s to the existing file p (sysfs knobs are never
// created).
func writeExisting(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
