package guestinit

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Linux input event constants (linux/input-event-codes.h).
const (
	evKey     = 0x01
	keyPower  = 116
	eventSize = 24 // struct input_event on 64-bit: timeval + u16 + u16 + s32
)

// FindPowerButton returns the /dev/input/eventN of the ACPI power button,
// matched by its input device name in sysfs.
func FindPowerButton(sysRoot, devRoot string) (string, bool) {
	names, _ := filepath.Glob(filepath.Join(sysRoot, "class", "input", "event*", "device", "name"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(b)) != "Power Button" {
			continue
		}
		ev := filepath.Base(filepath.Dir(filepath.Dir(n)))
		return filepath.Join(devRoot, "input", ev), true
	}
	return "", false
}

// IsPowerPress reports whether one raw input_event is a KEY_POWER press.
func IsPowerPress(ev []byte) bool {
	if len(ev) < eventSize {
		return false
	}
	typ := binary.LittleEndian.Uint16(ev[16:])
	code := binary.LittleEndian.Uint16(ev[18:])
	val := int32(binary.LittleEndian.Uint32(ev[20:]))
	return typ == evKey && code == keyPower && val == 1
}

// WatchPowerButton blocks reading the power button device; on a press it
// syncs and powers the machine off, so vm:power_button() ends in a clean
// shutdown. It returns only on a read error.
func WatchPowerButton(dev string) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("power button: %w", err)
	}
	defer f.Close()
	buf := make([]byte, eventSize*16)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return fmt.Errorf("power button: read: %w", err)
		}
		for off := 0; off+eventSize <= n; off += eventSize {
			if IsPowerPress(buf[off : off+eventSize]) {
				unix.Sync()
				return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
			}
		}
	}
}
