package agent

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/provium/provium/internal/proto"
)

func TestWriteHostsReplacesOnlyItsBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(p, []byte("127.0.0.1 localhost\n10.0.0.9 mine\n"), 0o644)
	if err := writeHosts(p, []proto.HostEntry{{Address: "10.64.0.2", Name: "a.lan"}, {Address: "10.64.0.3", Name: "b.lan"}}); err != nil {
		t.Fatal(err)
	}
	if err := writeHosts(p, []proto.HostEntry{{Address: "10.64.0.3", Name: "b.lan"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "127.0.0.1 localhost\n10.0.0.9 mine\n" + hostsBegin + "\n10.64.0.3 b.lan\n" + hostsEnd + "\n"
	if string(got) != want {
		t.Fatalf("hosts =\n%s\nwant\n%s", got, want)
	}
	if err := writeHosts(p, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "127.0.0.1 localhost\n10.0.0.9 mine\n" {
		t.Fatalf("hosts after clearing = %q", got)
	}
}

func TestRtentryMatchesTheKernelLayout(t *testing.T) {
	if s := unsafe.Sizeof(rtentry{}); s != 120 {
		t.Fatalf("sizeof(rtentry) = %d, want 120 (x86_64 struct rtentry)", s)
	}
}

// Raw links (addressing "none") send no hosts entries: a guest's own hosts
// file stays byte for byte, and a missing one is not created.
func TestWriteHostsWithoutEntriesLeavesTheGuestsFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "absent")
	if err := writeHosts(missing, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("writeHosts created %s (%v)", missing, err)
	}
	own := filepath.Join(dir, "hosts")
	content := "# the guest's own\n\n10.1.2.3 gw.example gw\n\n10.1.2.4 peer" // blank lines, no final newline
	os.WriteFile(own, []byte(content), 0o644)
	if err := writeHosts(own, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(own); string(got) != content {
		t.Fatalf("hosts = %q, want it unchanged %q", got, content)
	}
	// A block of ours comes and goes; the guest's lines stay as they were.
	if err := writeHosts(own, []proto.HostEntry{{Address: "10.64.0.2", Name: "a.lan"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(own)
	if want := content + "\n" + hostsBegin + "\n10.64.0.2 a.lan\n" + hostsEnd + "\n"; string(got) != want {
		t.Fatalf("hosts = %q, want %q", got, want)
	}
	if err := writeHosts(own, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(own); string(got) != content+"\n" {
		t.Fatalf("hosts after the block went = %q", got)
	}
}
