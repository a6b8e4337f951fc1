package lab

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseBootOptsValid(t *testing.T) {
	o, err := ParseBootOpts(map[string]any{
		"memory":                "1.5G",
		"cpus":                  int64(2),
		"kernel_cmdline":        "console=ttyS0",
		"kernel_cmdline_append": "quiet",
		"rng_seed":              int64(-1),
		"initial_time":          1.5,
		"agent_timeout":         int64(30),
		"files": []any{
			map[string]any{"path": "/etc/motd", "content": "hi"},
			map[string]any{"path": "/bin/x", "content": "#!", "mode": int64(0o755)},
		},
		"disks": []any{
			map[string]any{"scratch": "64M"},
			map[string]any{"id": "data", "path": "/img/data.raw", "readonly": true},
			map[string]any{"template": "/img/base.qcow2", "mediated": true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if *o.Memory != 1536<<20 || *o.CPUs != 2 || *o.KernelCmdline != "console=ttyS0" || *o.KernelCmdlineAppend != "quiet" {
		t.Errorf("scalars: %+v", o)
	}
	if *o.RNGSeed != math.MaxUint64 {
		t.Errorf("rng_seed -1 should keep its bits, got %d", *o.RNGSeed)
	}
	if !o.InitialTime.Equal(time.Unix(1, 5e8)) || *o.AgentTimeout != 30*time.Second {
		t.Errorf("initial_time %v agent_timeout %v", o.InitialTime, o.AgentTimeout)
	}
	if len(o.Files) != 2 || o.Files[0].Mode != 0o644 || o.Files[1].Mode != 0o755 || o.Files[1].Content != "#!" {
		t.Errorf("files: %+v", o.Files)
	}
	want := []DiskSpec{
		{ID: "boot0", Source: DiskScratch, Size: 64 << 20},
		{ID: "data", Source: DiskPath, Path: "/img/data.raw", ReadOnly: true},
		{ID: "boot2", Source: DiskTemplate, Path: "/img/base.qcow2", Mediated: true},
	}
	if len(o.Disks) != len(want) {
		t.Fatalf("disks: %+v", o.Disks)
	}
	for i := range want {
		if o.Disks[i] != want[i] {
			t.Errorf("disk %d = %+v, want %+v", i, o.Disks[i], want[i])
		}
	}
}

func TestParseBootOptsEmptyAndNil(t *testing.T) {
	o, err := ParseBootOpts(nil)
	if err != nil || o.Memory != nil || o.Files != nil {
		t.Fatalf("nil map: %+v %v", o, err)
	}
	// An empty Lua table arrives as []any{}; nil values are absent keys.
	o, err = ParseBootOpts(map[string]any{"files": []any{}, "disks": []any{}, "cpus": nil})
	if err != nil || len(o.Files) != 0 || o.CPUs != nil {
		t.Fatalf("empty tables: %+v %v", o, err)
	}
}

func TestBootOptsMemoryRoundsUpToMiB(t *testing.T) {
	for in, want := range map[any]uint64{int64(1): 1 << 20, "512M": 512 << 20, int64(3<<20 + 1): 4 << 20, 2048.0 * 1024 * 1024: 2 << 30} {
		o, err := ParseBootOpts(map[string]any{"memory": in})
		if err != nil || *o.Memory != want {
			t.Errorf("memory %v = %v, %v; want %d", in, o.Memory, err, want)
		}
	}
}

func TestParseBootOptsErrors(t *testing.T) {
	file := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"bogus": int64(1)}, "boot_opts: unknown key `bogus`"},
		{map[string]any{"disks": []any{map[string]any{}}}, "boot_opts.disks[1]: exactly one of path, scratch, template"},
		{map[string]any{"disks": []any{map[string]any{"path": "/a", "scratch": "1M"}}}, "boot_opts.disks[1]: exactly one of path, scratch, template"},
		{map[string]any{"disks": []any{map[string]any{"scratch": "1M"}, map[string]any{"path": "/a", "template": "/b"}}}, "boot_opts.disks[2]: exactly one of path, scratch, template"},
		{map[string]any{"disks": []any{map[string]any{"scratch": "1M"}, map[string]any{"id": "boot0", "path": "/a"}}}, "boot_opts.disks[2]: duplicate disk id `boot0`"},
		{map[string]any{"disks": []any{map[string]any{"path": "/a", "size": int64(1)}}}, "boot_opts.disks[1]: unknown key `size`"},
		{map[string]any{"disks": []any{map[string]any{"path": "/a", "readonly": "yes"}}}, `boot_opts.disks[1]: readonly must be a boolean, got "yes"`},
		{map[string]any{"disks": []any{map[string]any{"scratch": "0"}}}, "boot_opts.disks[1].scratch: cannot parse size `0`"},
		{map[string]any{"disks": []any{"x"}}, "boot_opts.disks[1]: expected a table, got string"},
		{map[string]any{"disks": map[string]any{"path": "/a"}}, "boot_opts.disks: expected an array of disk entries, got table"},
		{map[string]any{"cpus": int64(0)}, "boot_opts.cpus: must be an integer >= 1 (got 0)"},
		{map[string]any{"cpus": 1.5}, "boot_opts.cpus: must be an integer >= 1 (got 1.5)"},
		{map[string]any{"cpus": "2"}, "boot_opts.cpus: expected integer, got string"},
		{map[string]any{"memory": true}, `boot_opts.memory: expected size (integer bytes or a string like "512M"), got boolean`},
		{map[string]any{"memory": "lots"}, "boot_opts.memory: cannot parse size `lots`"},
		{map[string]any{"memory": int64(-5)}, "boot_opts.memory: cannot parse size `-5`"},
		{map[string]any{"kernel_cmdline": int64(1)}, "boot_opts.kernel_cmdline: expected string, got number"},
		{map[string]any{"kernel_cmdline_append": false}, "boot_opts.kernel_cmdline_append: expected string, got boolean"},
		{map[string]any{"rng_seed": 1.5}, "boot_opts.rng_seed: expected integer, got number"},
		{map[string]any{"initial_time": math.NaN()}, "boot_opts.initial_time: must be a finite number (got nan)"},
		{map[string]any{"initial_time": math.Inf(-1)}, "boot_opts.initial_time: must be a finite number (got -inf)"},
		{map[string]any{"initial_time": "now"}, "boot_opts.initial_time: expected number, got string"},
		{map[string]any{"agent_timeout": int64(0)}, "boot_opts.agent_timeout: must be a finite number > 0 (got 0)"},
		{map[string]any{"agent_timeout": math.Inf(1)}, "boot_opts.agent_timeout: must be a finite number > 0 (got inf)"},
		{map[string]any{"agent_timeout": "5s"}, "boot_opts.agent_timeout: expected number, got string"},
		{map[string]any{"files": "x"}, "boot_opts.files: expected an array of {path=, content=, mode=?}, got string"},
		{map[string]any{"files": []any{int64(1)}}, "boot_opts.files[1]: expected a table, got number"},
		{map[string]any{"files": []any{file("path", "rel/x", "content", "")}}, "boot_opts.files[1]: path `rel/x` must be absolute and clean (no `.`, `..`, `//`, NUL or trailing `/`)"},
		{map[string]any{"files": []any{file("path", "/a/../b", "content", "")}}, "boot_opts.files[1]: path `/a/../b` must be absolute and clean (no `.`, `..`, `//`, NUL or trailing `/`)"},
		{map[string]any{"files": []any{file("path", "/", "content", "")}}, "boot_opts.files[1]: path `/` must be absolute and clean (no `.`, `..`, `//`, NUL or trailing `/`)"},
		{map[string]any{"files": []any{file("content", "")}}, "boot_opts.files[1]: path must be a string, got nil"},
		{map[string]any{"files": []any{file("path", "/x")}}, "boot_opts.files[1] (`/x`): content must be a string, got nil"},
		{map[string]any{"files": []any{file("path", "/x", "content", "", "mode", int64(0o10000))}}, "boot_opts.files[1] (`/x`): mode must be an integer in 0..0o7777 (got 4096)"},
		{map[string]any{"files": []any{file("path", "/x", "content", "", "mode", int64(-1))}}, "boot_opts.files[1] (`/x`): mode must be an integer in 0..0o7777 (got -1)"},
		{map[string]any{"files": []any{file("path", "/x", "content", "", "mode", "644")}}, "boot_opts.files[1] (`/x`): mode must be an integer in 0..0o7777 (got \"644\")"},
		{map[string]any{"files": []any{file("path", "/x", "content", "", "owner", "root")}}, "boot_opts.files[1]: unknown key `owner`"},
	}
	for _, c := range cases {
		_, err := ParseBootOpts(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseBootOpts(%v)\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

func TestBootOptsFilesSamePathLaterWins(t *testing.T) {
	o, err := ParseBootOpts(map[string]any{"files": []any{
		map[string]any{"path": "/a", "content": "1"},
		map[string]any{"path": "/b", "content": "2"},
		map[string]any{"path": "/a", "content": "3"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Files) != 2 || o.Files[0].Path != "/a" || o.Files[0].Content != "3" || o.Files[1].Path != "/b" {
		t.Errorf("files = %+v", o.Files)
	}
}

func TestBootOptsMerge(t *testing.T) {
	base, err := ParseBootOpts(map[string]any{
		"memory": "512M", "cpus": int64(1), "kernel_cmdline": "a",
		"files": []any{map[string]any{"path": "/a", "content": "old"}},
		"disks": []any{map[string]any{"scratch": "1M"}, map[string]any{"id": "d", "path": "/d"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	over, err := ParseBootOpts(map[string]any{
		"cpus":  int64(4),
		"files": []any{map[string]any{"path": "/a", "content": "new"}, map[string]any{"path": "/b", "content": "b"}},
		"disks": []any{map[string]any{"id": "d", "template": "/t"}, map[string]any{"id": "e", "scratch": "2M"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := base.Merge(over)
	if *m.Memory != 512<<20 || *m.CPUs != 4 || *m.KernelCmdline != "a" {
		t.Errorf("scalars: memory %d cpus %d cmdline %q", *m.Memory, *m.CPUs, *m.KernelCmdline)
	}
	var files []string
	for _, f := range m.Files {
		files = append(files, f.Path+"="+f.Content)
	}
	if got := strings.Join(files, ","); got != "/a=new,/b=b" {
		t.Errorf("files = %s", got)
	}
	var disks []string
	for _, d := range m.Disks {
		disks = append(disks, d.ID+":"+string(d.Source))
	}
	if got := strings.Join(disks, ","); got != "boot0:scratch,d:template,e:scratch" {
		t.Errorf("disks = %s", got)
	}
	// Merge must not write through to either input.
	if base.Files[0].Content != "old" || *base.CPUs != 1 || base.Disks[1].Source != DiskPath {
		t.Errorf("merge modified its receiver: %+v", base)
	}
}

func TestBootOptsMergeEveryScalar(t *testing.T) {
	base, _ := ParseBootOpts(map[string]any{
		"memory": "1G", "cpus": int64(1), "kernel_cmdline": "a", "kernel_cmdline_append": "x",
		"rng_seed": int64(1), "initial_time": int64(10), "agent_timeout": int64(5),
	})
	over, _ := ParseBootOpts(map[string]any{
		"memory": "2G", "cpus": int64(2), "kernel_cmdline": "b", "kernel_cmdline_append": "y",
		"rng_seed": int64(2), "initial_time": int64(20), "agent_timeout": 0.5,
	})
	m := base.Merge(over)
	if *m.Memory != 2<<30 || *m.CPUs != 2 || *m.KernelCmdline != "b" || *m.KernelCmdlineAppend != "y" ||
		*m.RNGSeed != 2 || m.InitialTime.Unix() != 20 || *m.AgentTimeout != 500*time.Millisecond {
		t.Errorf("later scalars must win: %+v", m)
	}
	kept := base.Merge(BootOpts{})
	if *kept.Memory != 1<<30 || *kept.RNGSeed != 1 || kept.InitialTime.Unix() != 10 || *kept.KernelCmdlineAppend != "x" {
		t.Errorf("unset scalars must keep the staged value: %+v", kept)
	}
}

func TestBootOptsEmptyEntryTable(t *testing.T) {
	// {{}} arrives as []any{[]any{}}: an entry with no keys.
	_, err := ParseBootOpts(map[string]any{"files": []any{[]any{}}})
	if err == nil || err.Error() != "boot_opts.files[1]: path must be a string, got nil" {
		t.Errorf("got %v", err)
	}
	_, err = ParseBootOpts(map[string]any{"disks": []any{[]any{}}})
	if err == nil || err.Error() != "boot_opts.disks[1]: exactly one of path, scratch, template" {
		t.Errorf("got %v", err)
	}
}
