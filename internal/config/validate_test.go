package config

import (
	"errors"
	"testing"
)

func TestValidationMessages(t *testing.T) {
	const k = "kernel = \"k\"\ncmdline = \"c\"\n"
	tests := []struct {
		name string
		toml string
		want string
	}{
		// §7.6 fixed messages.
		{"empty cmdline", "[profiles.a]\nkernel = \"k\"\n",
			"profile `a` has empty cmdline and no `cmdline_file`; set at least one"},
		{"whitespace cmdline", "[profiles.a]\nkernel = \"k\"\ncmdline = \"  \\t \"\n",
			"profile `a` has empty cmdline and no `cmdline_file`; set at least one"},
		{"guest_os", "[profiles.a]\n" + k + "guest_os = \"windows\"\n",
			"profile `a` has guest_os = `windows`, only `linux` and `peios` are supported"},
		{"no kernel", "[profiles.a]\ncmdline = \"c\"\n",
			"profile `a` sets neither `kernel` nor `root`; set one"},
		{"inject without initrd", "[profiles.a]\n" + k + "inject_agent = false\n",
			"profile `a`: inject_agent = false needs an initrd"},
		{"boot timeout zero", "[profiles.a]\n" + k + "agent_boot_timeout = 0\n",
			"profile `a`: agent_boot_timeout must be a positive number of seconds, got 0"},
		{"boot timeout negative", "[profiles.a]\n" + k + "agent_boot_timeout = -1.5\n",
			"profile `a`: agent_boot_timeout must be a positive number of seconds, got -1.5"},
		{"boot timeout string", "[profiles.a]\n" + k + "agent_boot_timeout = \"30s\"\n",
			"profile `a`: agent_boot_timeout must be a positive number of seconds, got \"30s\""},
		{"boot timeout inf", "[profiles.a]\n" + k + "agent_boot_timeout = inf\n",
			"profile `a`: agent_boot_timeout must be a positive number of seconds, got +Inf"},

		// Generic profile forms.
		{"name pattern", "[profiles.\"-bad\"]\n" + k,
			"profile `-bad`: name: must match `[A-Za-z0-9][A-Za-z0-9._-]*`, got `-bad`"},
		{"not a table", "[profiles]\na = 5\n",
			"profile `a`: must be a table, got `5`"},
		{"kernel type", "[profiles.a]\nkernel = 5\ncmdline = \"c\"\n",
			"profile `a`: kernel: must be a non-empty path string, got `5`"},
		{"kernel empty", "[profiles.a]\nkernel = \"\"\ncmdline = \"c\"\n",
			"profile `a`: kernel: must be a non-empty path string, got ``"},
		{"cmdline type", "[profiles.a]\nkernel = \"k\"\ncmdline = [\"a\"]\n",
			"profile `a`: cmdline: must be a string, got `[\"a\"]`"},
		{"inject type", "[profiles.a]\n" + k + "inject_agent = \"no\"\n",
			"profile `a`: inject_agent: must be `true` or `false`, got `no`"},
		{"bad size", "[profiles.a]\n" + k + "memory = \"lots\"\n",
			"profile `a`: memory: " + probSize + ", got `lots`"},
		{"zero size", "[profiles.a]\n" + k + "memory = 0\n",
			"profile `a`: memory: " + probSize + ", got `0`"},
		{"overflow size", "[profiles.a]\n" + k + "memory = \"16777216T\"\n",
			"profile `a`: memory: " + probSize + ", got `16777216T`"},
		{"cpus zero", "[profiles.a]\n" + k + "cpus = 0\n",
			"profile `a`: cpus: must be a positive integer, got `0`"},
		{"cpus float", "[profiles.a]\n" + k + "cpus = 1.5\n",
			"profile `a`: cpus: must be a positive integer, got `1.5`"},
		{"kernel_boot", "[profiles.a]\n" + k + "kernel_boot = \"efi\"\n",
			"profile `a`: kernel_boot: must be `auto`, `pvh` or `bzimage`, got `efi`"},
		{"arch", "[profiles.a]\n" + k + "arch = \"aarch64\"\n",
			"profile `a`: arch: must be `x86_64` (the only supported architecture), got `aarch64`"},
		{"machine", "[profiles.a]\n" + k + "machine = \"virt\"\n",
			"profile `a`: machine: must be `q35`, `pc` or `microvm`, got `virt`"},
		{"firmware", "[profiles.a]\n" + k + "firmware = \"ovmf\"\n",
			"profile `a`: firmware: must be `auto`, `qboot` or `seabios`, got `ovmf`"},
		{"build empty", "[profiles.a]\n" + k + "build = \" \"\n",
			"profile `a`: build: must be a non-empty string, got ` `"},
		{"disks type", "[profiles.a]\n" + k + "disks = \"d.img\"\n",
			"profile `a`: disks: must be an array of tables `{path, id, readonly}`, got `d.img`"},
		{"disk entry type", "[profiles.a]\n" + k + "disks = [\"d.img\"]\n",
			"profile `a`: disks[0]: must be a table `{path, id, readonly}`, got `d.img`"},
		{"disk path missing", "[profiles.a]\n" + k + "disks = [{id = \"x\"}]\n",
			"profile `a`: disks[0].path: must be a non-empty path string, got nothing"},
		{"disk id missing", "[profiles.a]\n" + k + "disks = [{path = \"/d\"}]\n",
			"profile `a`: disks[0].id: must be a non-empty string, got nothing"},
		{"disk id duplicate", "[profiles.a]\n" + k + "disks = [{path = \"/d\", id = \"x\"}, {path = \"/e\", id = \"x\"}]\n",
			"profile `a`: disks[1].id: must be unique among the profile's disks, got `x`"},
		{"disk readonly", "[profiles.a]\n" + k + "disks = [{path = \"/d\", id = \"x\", readonly = 1}]\n",
			"profile `a`: disks[0].readonly: must be `true` or `false`, got `1`"},
		{"home unset", "[profiles.a]\nkernel = \"~/k\"\ncmdline = \"c\"\n",
			"profile `a`: kernel: " + probHome + ", got `~/k`"},
		{"sorted first wins", "[profiles.b]\ncmdline = \"c\"\n[profiles.a]\nkernel = \"k\"\n",
			"profile `a` has empty cmdline and no `cmdline_file`; set at least one"},

		// [provium] forms.
		{"provium table", "provium = 3\n", "`provium` must be a table, got `3`"},
		{"profiles table", "profiles = 3\n", "`profiles` must be a table, got `3`"},
		{"roots type", "[provium]\nroots = \"tests\"\n",
			"[provium] roots: must be an array of directory path strings, got `tests`"},
		{"roots element", "[provium]\nroots = [\"a\", 1]\n",
			"[provium] roots: must be an array of directory path strings, got `[\"a\", 1]`"},
		{"cache_dir", "[provium]\ncache_dir = 1\n",
			"[provium] cache_dir: must be a non-empty path string, got `1`"},
		{"cache_max_size", "[provium]\ncache_max_size = \"big\"\n",
			"[provium] cache_max_size: " + probSize + ", got `big`"},
		{"accel", "[provium]\naccel = \"hvf\"\n",
			"[provium] accel: must be `auto`, `kvm` or `tcg`, got `hvf`"},
		{"scratch_dir", "[provium]\nscratch_dir = \"\"\n",
			"[provium] scratch_dir: must be a non-empty path string, got ``"},
		{"psi range", "[provium]\npsi_threshold = 101\n",
			"[provium] psi_threshold: " + probPSI + ", got `101`"},
		{"psi type", "[provium]\npsi_threshold = \"50\"\n",
			"[provium] psi_threshold: " + probPSI + ", got `50`"},
		{"provium before profiles", "[provium]\naccel = \"x\"\n[profiles.a]\n",
			"[provium] accel: must be `auto`, `kvm` or `tcg`, got `x`"},
		{"from_dir type", "[profiles]\nfrom_dir = 7\n",
			"[profiles] from_dir: must be a non-empty path string, got `7`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, path, err := loadString(t, tc.toml, envMap())
			var ce *Error
			if !errors.As(err, &ce) || ce.Kind != InvalidError {
				t.Fatalf("err = %v, want InvalidError", err)
			}
			if want := "invalid config in `" + path + "`: " + tc.want; err.Error() != want {
				t.Errorf("err =\n%s\nwant\n%s", err, want)
			}
		})
	}
}
