package accel

import (
	"fmt"
	"time"
)

// ReasonCode classifies why KVM is unusable, so callers can branch on it
// without parsing text.
type ReasonCode string

const (
	ReasonNone       ReasonCode = ""
	ReasonNoDevice   ReasonCode = "no-device"
	ReasonPermission ReasonCode = "permission-denied"
	ReasonNoVirtExt  ReasonCode = "no-vmx-svm"
	ReasonIoctl      ReasonCode = "ioctl-error"
	ReasonTimeout    ReasonCode = "timeout"
)

// Reason says why KVM is unusable (Text) and what the user can do (Fix).
type Reason struct {
	Code ReasonCode `json:"code"`
	Text string     `json:"text"`
	Fix  string     `json:"fix"`
}

func (r Reason) String() string { return r.Text }

const fixUseTCG = "run with `--accel tcg` (or `accel = \"tcg\"` in provium.toml)"

func reasonNoDevice(dev string) Reason {
	return Reason{ReasonNoDevice, fmt.Sprintf("%s does not exist", dev),
		"load kvm_intel or kvm_amd (modprobe), or enable nested virtualisation for this machine"}
}

func reasonPermission(dev string) Reason {
	return Reason{ReasonPermission, fmt.Sprintf("%s: permission denied", dev),
		"add your user to the `kvm` group (usermod -aG kvm $USER) and log in again"}
}

func reasonNoVirtExt() Reason {
	return Reason{ReasonNoVirtExt, "the CPU advertises neither vmx nor svm",
		"enable VT-x/AMD-V in the firmware, or nested virtualisation on the host; or " + fixUseTCG}
}

func reasonIoctl(what string) Reason {
	return Reason{ReasonIoctl, what, "check `dmesg` for kvm errors; or " + fixUseTCG}
}

// reasonTimeout names the step that did not answer. The step that hangs on
// broken hosts is KVM_CREATE_VM, whose text the spec fixes:
// `KVM_CREATE_VM did not answer within 2s`.
func reasonTimeout(step string, d time.Duration) Reason {
	return Reason{ReasonTimeout, fmt.Sprintf("%s did not answer within %s", step, d),
		"the host's KVM is broken or overloaded; " + fixUseTCG}
}
