package luaapi_test

import (
	"strings"
	"testing"

	"github.com/provium/provium/internal/guesttest"
)

// A profile whose cmdline names console=hvc0 last (the real suites' peinit
// profile has `console=hvc0` alone; this one also names ttyS0 with options,
// which is not the exact token console=ttyS0) still has its console output
// captured: console=ttyS0 is appended, so /dev/console is the serial port.
func TestConsoleOfAnHVCProfileOnARealGuest(t *testing.T) {
	img := guesttest.Image(t)
	hvc := strings.Replace(img.Profile, "[profiles.linux]", "[profiles.hvc]", 1)
	hvc = strings.Replace(hvc, "console=ttyS0 ", "console=ttyS0,115200n8 console=hvc0 ", 1)
	if !strings.Contains(hvc, "console=hvc0") || !strings.Contains(hvc, "[profiles.hvc]") {
		t.Fatalf("could not derive a console=hvc0 profile from:\n%s", img.Profile)
	}
	res, _ := runGuestFileWith(t, guesttest.ConfigText(t, img.Profile+"\n"+hvc), "console_hvc.test.lua")
	wantTests(t, res, 3)
}
