package guest

import "testing"

func TestBootLoglevel(t *testing.T) {
	for cmdline, want := range map[string]string{
		"console=ttyS0":                    "7",
		"console=ttyS0 quiet panic=-1":     "4",
		"quiet loglevel=6":                 "6",
		"loglevel=3 quiet":                 "4",
		"loglevel=12":                      "7", // not one sysrq digit: the default
		"debug console=ttyS0,115200 quiet": "4",
	} {
		if got := bootLoglevel(cmdline); got != want {
			t.Errorf("bootLoglevel(%q) = %s, want %s", cmdline, got, want)
		}
	}
}

func TestSerialIsConsole(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"console=ttyS0 quiet":                 true,
		"console=hvc0 console=ttyS0,115200n8": true,
		"console=hvc0":                        false,
		"console=ttyS01":                      false,
		"quiet":                               false,
	} {
		if got := serialIsConsole(cmdline); got != want {
			t.Errorf("serialIsConsole(%q) = %v, want %v", cmdline, got, want)
		}
	}
}
