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
