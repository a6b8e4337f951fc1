package snapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type fixtureFiles struct {
	disk, ram, state             string
	diskData, ramData, stateData []byte
}

// makeMembers writes a disk image, a RAM file with data islands between
// zero runs (so sparse extraction has something to do) and a state stream.
func makeMembers(t *testing.T) fixtureFiles {
	t.Helper()
	dir := t.TempDir()
	ff := fixtureFiles{
		disk:  filepath.Join(dir, "disk0"),
		ram:   filepath.Join(dir, "ram"),
		state: filepath.Join(dir, "state"),
	}
	ff.diskData = bytes.Repeat([]byte("disk"), 3000)
	ff.ramData = make([]byte, 3<<20+100) // not a multiple of the block size
	copy(ff.ramData[5000:], "hello")
	copy(ff.ramData[2<<20:], bytes.Repeat([]byte{7}, 9000))
	ff.ramData[len(ff.ramData)-1] = 1
	ff.stateData = []byte("QEVM migration stream bytes")
	// The RAM file is made sparse like a real one: written at its islands
	// only.
	ram, err := os.Create(ff.ram)
	if err != nil {
		t.Fatal(err)
	}
	if err := ram.Truncate(int64(len(ff.ramData))); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{5000, 2 << 20, len(ff.ramData) - 1} {
		end := min(off+9000, len(ff.ramData))
		if _, err := ram.WriteAt(ff.ramData[off:end], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	ram.Close()
	for p, d := range map[string][]byte{ff.disk: ff.diskData, ff.state: ff.stateData} {
		if err := os.WriteFile(p, d, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ff
}

func testManifest() Manifest {
	return Manifest{
		Profile: "linux", MemoryBytes: 512 << 20, CPUs: 2, Cmdline: "console=ttyS0",
		Kernel: Identity{Path: "/k", SHA256: "aa"},
		Disks:  []Disk{{Name: "data", SizeBytes: 12000, Format: "raw", Member: "disk0"}},
		NICs:   []NIC{{Bridge: "lan", MAC: "52:54:00:00:00:01", Address: "10.0.0.2"}},
		HasRAM: true,
	}
}

func writeSnap(t *testing.T, compress bool, ff fixtureFiles) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vm.snap")
	err := Create(path, compress, testManifest(),
		Member{Name: "disk0", Path: ff.disk}, Member{Name: MemberRAM, Path: ff.ram}, Member{Name: MemberState, Path: ff.state})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	ff := makeMembers(t)
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw", true: "zstd"}[compress], func(t *testing.T) {
			path := writeSnap(t, compress, ff)
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Compressed() != compress {
				t.Fatalf("Compressed() = %t", r.Compressed())
			}
			m := r.Manifest()
			if m.Profile != "linux" || m.CPUs != 2 || len(m.Members) != 3 || m.Members[1].Size != int64(len(ff.ramData)) {
				t.Fatalf("manifest = %+v", m)
			}
			out := t.TempDir()
			if err := r.Extract("disk0", filepath.Join(out, "disk0")); err != nil {
				t.Fatal(err)
			}
			if err := r.Extract(MemberRAM, filepath.Join(out, "ram")); err != nil {
				t.Fatal(err)
			}
			var state bytes.Buffer
			if _, err := r.StreamState(&state); err != nil {
				t.Fatal(err)
			}
			assertFile(t, filepath.Join(out, "disk0"), ff.diskData)
			assertFile(t, filepath.Join(out, "ram"), ff.ramData)
			if !bytes.Equal(state.Bytes(), ff.stateData) {
				t.Fatalf("state = %q", state.Bytes())
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(out, "ram"), &st); err != nil {
				t.Fatal(err)
			}
			// Three data islands of at most a few blocks each; a dense file
			// would occupy the full 3 MiB.
			if used := st.Blocks * 512; used > 256<<10 {
				t.Fatalf("extracted RAM uses %d bytes on disk; want it sparse", used)
			}
		})
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (len %d, want %d)", path, len(got), len(want))
	}
}

func TestStreamStateSkipsMembers(t *testing.T) {
	ff := makeMembers(t)
	r, err := Open(writeSnap(t, true, ff))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := r.StreamState(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(ff.stateData) {
		t.Fatalf("state = %q", buf.String())
	}
}

func TestCorruption(t *testing.T) {
	ff := makeMembers(t)
	cases := []struct {
		name     string
		compress bool
		mangle   func([]byte) []byte
	}{
		{"truncated zstd", true, func(b []byte) []byte { return b[:len(b)/2] }},
		{"truncated zstd tail", true, func(b []byte) []byte { return b[:len(b)-3] }},
		{"flipped zstd byte", true, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }},
		{"truncated raw", false, func(b []byte) []byte { return b[:len(b)-5] }},
		{"trailing raw", false, func(b []byte) []byte { return append(b, 'x') }},
		{"bad magic", false, func(b []byte) []byte { b[0] = 'X'; return b }},
		{"bad version", false, func(b []byte) []byte { b[len(Magic)+3] = 9; return b }},
		{"bad manifest", false, func(b []byte) []byte { b[headerLen] = '['; return b }},
		{"empty", false, func(b []byte) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSnap(t, tc.compress, ff)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.mangle(b), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Verify(path)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestVerifyIntact(t *testing.T) {
	ff := makeMembers(t)
	for _, c := range []bool{false, true} {
		if _, err := Verify(writeSnap(t, c, ff)); err != nil {
			t.Fatalf("compress=%t: %v", c, err)
		}
	}
}

func TestWriteValidatesOrder(t *testing.T) {
	ff := makeMembers(t)
	m := testManifest()
	cases := map[string][]Member{
		"no state":           {{Name: "disk0", Path: ff.disk}, {Name: MemberRAM, Path: ff.ram}},
		"ram after disk":     {{Name: MemberRAM, Path: ff.ram}, {Name: "disk0", Path: ff.disk}, {Name: MemberState, Path: ff.state}},
		"dup":                {{Name: "d", Path: ff.disk}, {Name: "d", Path: ff.disk}, {Name: MemberRAM, Path: ff.ram}, {Name: MemberState, Path: ff.state}},
		"missing ram":        {{Name: MemberState, Path: ff.state}},
		"disk member absent": {{Name: "other", Path: ff.disk}, {Name: MemberRAM, Path: ff.ram}, {Name: MemberState, Path: ff.state}},
	}
	for name, members := range cases {
		if err := Write(io.Discard, m, members...); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
	if err := Write(io.Discard, m, Member{Name: "x", Path: "/nonexistent"}); err == nil || !strings.Contains(err.Error(), "opening member") {
		t.Errorf("missing file: %v", err)
	}
	m.HasRAM = false
	m.Disks = nil
	if err := Write(io.Discard, m, Member{Name: MemberState, Path: ff.state}); err != nil {
		t.Errorf("portable path: %v", err)
	}
}

func TestProfileMismatch(t *testing.T) {
	err := CheckProfile(Manifest{Profile: "alpine"}, "web", "linux")
	want := "vm:restore: snapshot was taken from profile `alpine`, vm `web` uses profile `linux`"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
	if CheckProfile(Manifest{Profile: "linux"}, "web", "linux") != nil {
		t.Fatal("same profile refused")
	}
}

func TestDiff(t *testing.T) {
	base := testManifest()
	if d := Diff(base, base); d != "" {
		t.Fatalf("identical: %q", d)
	}
	mod := func(f func(*Manifest)) Manifest {
		m := testManifest()
		f(&m)
		return m
	}
	cases := map[string]Manifest{
		"memory":  mod(func(m *Manifest) { m.MemoryBytes = 1 }),
		"cpus":    mod(func(m *Manifest) { m.CPUs = 1 }),
		"kernel":  mod(func(m *Manifest) { m.Kernel.SHA256 = "bb" }),
		"disk 0":  mod(func(m *Manifest) { m.Disks[0].SizeBytes = 1 }),
		"devices": mod(func(m *Manifest) { m.Devices = []string{"virtio-rng"} }),
		"initrd":  mod(func(m *Manifest) { m.Initrd.SHA256 = "cc" }),
	}
	for word, m := range cases {
		if d := Diff(base, m); !strings.HasPrefix(d, word) {
			t.Errorf("%s: Diff = %q", word, d)
		}
	}
	// A restore fits the snapshot's NICs to the VM's bridges itself.
	if d := Diff(base, mod(func(m *Manifest) { m.NICs = nil })); d != "" {
		t.Errorf("other NICs: Diff = %q, want none", d)
	}
}
