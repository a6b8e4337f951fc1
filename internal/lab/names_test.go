package lab

import (
	"strings"
	"testing"
)

func TestValidateVMName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"A9", true},
		{"web-1_x", true},
		{"0start", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-lead", false},
		{"_lead", false},
		{"has.dot", false},
		{"has space", false},
		{"ünï", false},
		{"pack", false},
		{"unpack", false},
		{"vm_fixture", false},
		{"lab_fixture", false},
	}
	for _, c := range cases {
		err := validateVMName("lab:vm", c.name)
		if (err == nil) != c.ok {
			t.Errorf("validateVMName(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && (!strings.HasPrefix(err.Error(), "lab:vm: ") || !strings.Contains(err.Error(), "`"+c.name+"`")) {
			t.Errorf("validateVMName(%q) error %q must name the call and the value", c.name, err)
		}
	}
}

func TestNameErrorTexts(t *testing.T) {
	cases := []struct {
		got  error
		want string
	}{
		{validateVMName("lab:vm", "a.b"), "lab:vm: invalid vm name `a.b` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)"},
		{validateBridgeName("lab:bridge", "-x"), "lab:bridge: invalid bridge name `-x` (1-63 letters, digits, `_` or `-`, starting with a letter or digit)"},
		{validateVMName("lab:vm", "pack"), "lab:vm: vm name `pack` is reserved (pack, unpack, vm_fixture, lab_fixture)"},
		{validateLabName("lab:lab", "a/b"), "lab:lab: invalid lab name `a/b` (must be non-empty, without `/` or whitespace)"},
		{validateLabName("lab:lab", "lab_fixture"), "lab:lab: lab name `lab_fixture` is reserved (pack, unpack, vm_fixture, lab_fixture)"},
	}
	for _, c := range cases {
		if c.got == nil || c.got.Error() != c.want {
			t.Errorf("got %v\nwant %s", c.got, c.want)
		}
	}
}

func TestValidateLabName(t *testing.T) {
	for name, ok := range map[string]bool{
		"dc1": true, "my.lab": true, "__lab_0": true, "ünï": true,
		"": false, "a/b": false, "a b": false, "tab\t": false, "nl\n": false, "unpack": false,
	} {
		if err := validateLabName("lab:lab", name); (err == nil) != ok {
			t.Errorf("validateLabName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
