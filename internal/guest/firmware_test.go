package guest

import (
	"testing"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/vmm"
)

// A profile written for upstream (no guest_os) boots through SeaBIOS as
// upstream's guests do; ours through the fast default; an explicit choice
// always wins.
func TestFirmwareFileFollowsTheProfile(t *testing.T) {
	cases := []struct {
		firmware string
		named    bool
		want     string
	}{
		{config.DefaultFirmware, true, ""},
		{config.DefaultFirmware, false, "bios-256k.bin"},
		{"qboot", false, vmm.DefaultQboot},
		{"qboot", true, vmm.DefaultQboot},
		{"seabios", true, "bios-256k.bin"},
	}
	for _, c := range cases {
		p := &config.Profile{Name: "p", Firmware: c.firmware, GuestOSNamed: c.named}
		if got := firmwareFile(p); got != c.want {
			t.Errorf("firmware %q, guest_os named %v: -bios %q, want %q", c.firmware, c.named, got, c.want)
		}
	}
}
