package sched

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	mib = uint64(1) << 20
	gib = uint64(1) << 30
)

func TestReadHostCgroupV2(t *testing.T) {
	h, err := ReadHost("testdata/v2", 8)
	if err != nil {
		t.Fatal(err)
	}
	want := Host{MemTotal: 16384000 * 1024, CgroupMemory: 4 * gib, AffinityCPUs: 8, CgroupCPUs: 2}
	if h != want {
		t.Fatalf("ReadHost = %+v, want %+v", h, want)
	}
}

func TestReadHostCgroupV1(t *testing.T) {
	h, err := ReadHost("testdata/v1", 4)
	if err != nil {
		t.Fatal(err)
	}
	// The leaf is unlimited (v1 writes a huge page multiple); the parent's
	// 2 GiB applies. A 0.5-CPU quota still leaves one CPU.
	want := Host{MemTotal: 8000000 * 1024, CgroupMemory: 2 * gib, AffinityCPUs: 4, CgroupCPUs: 1}
	if h != want {
		t.Fatalf("ReadHost = %+v, want %+v", h, want)
	}
}

func TestReadHostNoCgroup(t *testing.T) {
	h, err := ReadHost("testdata/none", 2)
	if err != nil {
		t.Fatal(err)
	}
	if h != (Host{MemTotal: 1024 * 1024, AffinityCPUs: 2}) {
		t.Fatalf("ReadHost = %+v", h)
	}
	if _, err := ReadHost("testdata/missing", 2); err == nil || !strings.Contains(err.Error(), "reading host memory") {
		t.Fatalf("missing meminfo: %v", err)
	}
}

func TestParseCgroupValues(t *testing.T) {
	for in, want := range map[string]uint64{"max": 0, "1073741824": gib, "junk": 0} {
		if got := ParseMemoryMax(in); got != want {
			t.Errorf("ParseMemoryMax(%q) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[string]int{"max 100000": 0, "200000 100000": 2, "150000 100000": 1, "50000 100000": 1, "400000": 4, "": 0, "-1 100000": 0} {
		if got := ParseCPUMax(in); got != want {
			t.Errorf("ParseCPUMax(%q) = %d, want %d", in, got, want)
		}
	}
	c := ParseCgroupFile([]byte("12:cpu,cpuacct:/a\n4:memory:/b\n0::/c\nbad line\n"))
	if c.Unified != "/c" || c.V1["cpu"] != "/a" || c.V1["cpuacct"] != "/a" || c.V1["memory"] != "/b" {
		t.Fatalf("ParseCgroupFile = %+v", c)
	}
	if _, err := ParseMemTotal([]byte("MemFree: 1 kB\n")); err == nil {
		t.Fatal("meminfo without MemTotal parsed")
	}
}

func TestTotal(t *testing.T) {
	h := Host{MemTotal: 10 * gib, AffinityCPUs: 4}
	cases := []struct {
		name string
		h    Host
		s    Sizing
		want Amount
	}{
		{"80 % of MemTotal, all CPUs", h, Sizing{}, Amount{8 * gib, 4}},
		{"cgroup memory below 80 % wins", Host{MemTotal: 10 * gib, CgroupMemory: 3 * gib, AffinityCPUs: 4}, Sizing{}, Amount{3 * gib, 4}},
		{"cgroup memory above 80 % ignored", Host{MemTotal: 10 * gib, CgroupMemory: 9 * gib, AffinityCPUs: 4}, Sizing{}, Amount{8 * gib, 4}},
		{"cgroup cpus cap the base", Host{MemTotal: 10 * gib, AffinityCPUs: 4, CgroupCPUs: 2}, Sizing{}, Amount{8 * gib, 2}},
		{"--mem and --cpus replace", h, Sizing{Memory: gib, CPUs: 16}, Amount{gib, 16}},
		{"overcommit floors", h, Sizing{Overcommit: 1.9}, Amount{8 * gib, 7}},
		{"never below one cpu", Host{MemTotal: gib, AffinityCPUs: 1}, Sizing{Overcommit: 0.5}, Amount{gib * 4 / 5, 1}},
		{"--cpus with overcommit", h, Sizing{CPUs: 3, Overcommit: 2}, Amount{8 * gib, 6}},
	}
	for _, c := range cases {
		if got := Total(c.h, c.s); got != c.want {
			t.Errorf("%s: Total = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestClampOvercommit(t *testing.T) {
	cases := []struct {
		in     float64
		raw    string
		want   float64
		notice string
	}{
		{1.5, "1.5", 1.5, ""},
		{0.5, "0.5", 0.5, ""},
		{8, "8", 8, ""},
		{0.1, "0.1", 0.5, "--cpu-overcommit 0.1 clamped to 0.5 (sane range 0.5–8.0)"},
		{20, "20", 8, "--cpu-overcommit 20 clamped to 8.0 (sane range 0.5–8.0)"},
		{-3, "-3", 0.5, "--cpu-overcommit -3 clamped to 0.5 (sane range 0.5–8.0)"},
	}
	for _, c := range cases {
		v, n := ClampOvercommit(c.in, c.raw)
		if v != c.want || n != c.notice {
			t.Errorf("ClampOvercommit(%v) = %v, %q; want %v, %q", c.in, v, n, c.want, c.notice)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	cases := map[Amount]string{
		{Memory: 612 * mib, CPUs: 1}:          "612 MiB and 1 cpu",
		{Memory: gib + gib/10, CPUs: 2}:       "1.1 GiB and 2 cpus",
		{Memory: 2 * gib, CPUs: 0}:            "2 GiB and 0 cpus",
		{Memory: 512, CPUs: 3}:                "512 B and 3 cpus",
		{Memory: 1536 * mib, CPUs: 4}:         "1.5 GiB and 4 cpus",
		{Memory: VMCharge(256*mib, 1).Memory}: "356 MiB and 0 cpus",
	}
	for a, want := range cases {
		if got := a.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", a, got, want)
		}
	}
}

func TestPSI(t *testing.T) {
	v, err := ParseSomeAvg10([]byte("some avg10=12.50 avg60=1.00 avg300=0.00 total=1\nfull avg10=99.00 avg60=0 avg300=0 total=0\n"))
	if err != nil || v != 12.5 {
		t.Fatalf("ParseSomeAvg10 = %v, %v", v, err)
	}
	if _, err := ParseSomeAvg10([]byte("full avg10=1.00\n")); err == nil {
		t.Fatal("a file without `some` parsed")
	}
	if _, err := ParseSomeAvg10([]byte("some avg10=x\n")); err == nil {
		t.Fatal("a bad avg10 parsed")
	}
	// The larger of cpu (32.89) and memory (61.50, not its `full` 70).
	if v, ok := (Pressure{Root: "testdata/psi"}).Read(); !ok || v != 61.5 {
		t.Fatalf("Read = %v, %v", v, ok)
	}
	if v, ok := (Pressure{Root: "testdata/none"}).Read(); ok || v != 0 {
		t.Fatalf("Read without PSI = %v, %v", v, ok)
	}
}

func TestTuneKSM(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"run", "pages_to_scan", "sleep_millisecs"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := TuneKSM(dir); got != "ksm tuned (run = on, pages_to_scan = 1000, sleep_millisecs = 100)" {
		t.Fatalf("TuneKSM = %q", got)
	}
	for n, want := range map[string]string{"run": "1\n", "pages_to_scan": "1000\n", "sleep_millisecs": "100\n"} {
		if b, _ := os.ReadFile(filepath.Join(dir, n)); string(b) != want {
			t.Errorf("%s = %q, want %q", n, b, want)
		}
	}
	missing := filepath.Join(dir, "nope")
	if got := TuneKSM(missing); got != "ksm not tuned ("+missing+" does not exist)" {
		t.Fatalf("TuneKSM(missing) = %q", got)
	}
	// A knob that cannot be written (here: absent, and never created).
	os.Remove(filepath.Join(dir, "sleep_millisecs"))
	if got := TuneKSM(dir); !strings.HasPrefix(got, "ksm not tuned (writing "+filepath.Join(dir, "sleep_millisecs")+": ") {
		t.Fatalf("TuneKSM(read-only) = %q", got)
	}
}
