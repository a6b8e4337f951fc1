// Package accel decides how Provium's guests are accelerated: KVM when the
// host offers a KVM that actually works, TCG otherwise.
//
// "Works" is decided by a probe that runs in a re-executed child process so a
// broken /dev/kvm (one whose ioctls never return) can hang the child but never
// Provium itself: the child is abandoned after a bounded time. The verdict is
// cached per boot and per /dev/kvm instance, because it cannot change without
// a reboot or a reload of the kvm module.
package accel

import "fmt"

// Mode is an acceleration choice as the user writes it (`accel = …`, `--accel`).
type Mode string

const (
	Auto Mode = "auto"
	KVM  Mode = "kvm"
	TCG  Mode = "tcg"
)

// ParseMode validates a user-supplied mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, KVM, TCG:
		return m, nil
	}
	return "", fmt.Errorf("accel: unknown mode %q (want auto, kvm or tcg)", s)
}
