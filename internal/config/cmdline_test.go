package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestBaseCmdline(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cmdline")
	writeFile(t, file, "  root=/dev/vda\n\tinit=/sbin/init   ro \n")
	p := &Profile{Name: "p", CmdlineFile: file, Cmdline: "loglevel=7"}
	got, err := p.BaseCmdline()
	if want := "root=/dev/vda init=/sbin/init ro loglevel=7"; err != nil || got != want {
		t.Errorf("BaseCmdline = %q, %v; want %q", got, err, want)
	}
	p = &Profile{Name: "p", Cmdline: "quiet"}
	if got, err := p.BaseCmdline(); err != nil || got != "quiet" {
		t.Errorf("inline only = %q, %v", got, err)
	}
	missing := filepath.Join(dir, "nope")
	p = &Profile{Name: "p", CmdlineFile: missing}
	_, err = p.BaseCmdline()
	if want := "profile `p`: read cmdline_file `" + missing + "`: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("missing file err = %v, want %s", err, want)
	}
}

func TestComposeCmdline(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name    string
		base    string
		replace *string
		appendS string
		inject  bool
		want    string
	}{
		{"adds console and rdinit", "quiet", nil, "", true, "quiet console=ttyS0 rdinit=/sbin/provium-agent"},
		{"no inject", "quiet", nil, "", false, "quiet console=ttyS0"},
		{"console present", "console=ttyS0 quiet", nil, "", false, "console=ttyS0 quiet"},
		{"serial console with options still adds the bare token", "console=ttyS0,115200 quiet", nil, "", false, "console=ttyS0,115200 quiet console=ttyS0"},
		{"appended hvc0 after the profile's ttyS0 adds nothing", "console=ttyS0", nil, "console=hvc0", false, "console=ttyS0 console=hvc0"},
		{"appended console token counts", "quiet", nil, "console=ttyS0", false, "quiet console=ttyS0"},
		{"corpus profile: ttyS0 comes last", "console=hvc0 panic=1 TERM=dumb", nil, "", true, "console=hvc0 panic=1 TERM=dumb console=ttyS0 rdinit=/sbin/provium-agent"},
		{"other console still adds ttyS0", "console=hvc0", nil, "", false, "console=hvc0 console=ttyS0"},
		{"replace", "quiet", str("loglevel=7"), "", false, "loglevel=7 console=ttyS0"},
		{"append", "quiet", nil, " debug ", false, "quiet debug console=ttyS0"},
		{"replace and append", "quiet", str(""), "debug", false, "debug console=ttyS0"},
		{"own agent rdinit kept once", "rdinit=/sbin/provium-agent", nil, "", true, "rdinit=/sbin/provium-agent console=ttyS0"},
		{"rdinit allowed without inject", "rdinit=/init", nil, "", false, "rdinit=/init console=ttyS0"},
		{"empty", "", nil, "", true, "console=ttyS0 rdinit=/sbin/provium-agent"},
	}
	for _, tc := range tests {
		got, err := ComposeCmdline("p", tc.base, tc.replace, tc.appendS, tc.inject)
		if err != nil || got != tc.want {
			t.Errorf("%s: = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestComposeCmdlineRdinitConflict(t *testing.T) {
	for _, c := range []struct{ base, app string }{{"quiet rdinit=/init", ""}, {"quiet", "rdinit=/bin/sh"}} {
		_, err := ComposeCmdline("p", c.base, nil, c.app, true)
		x := strings.TrimPrefix(strings.Fields(c.base + " " + c.app)[1], "rdinit=")
		want := "profile `p`: cmdline sets rdinit=" + x + ", which conflicts with agent injection; remove it or set inject_agent = false"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	}
}
