package guest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
)

// TestProfileDisksComeFirstAndStayPristine boots a profile with two disks
// plus a boot option disk: the guest sees the profile's disks first
// (vda, vdb), then the boot option's (vdc), each with its id as serial; a
// writable profile disk is a per-VM copy (the file is never written) and a
// readonly one is read-only in the guest.
func TestProfileDisksComeFirstAndStayPristine(t *testing.T) {
	img := guesttest.Image(t)
	dir := t.TempDir()
	pd, ro := filepath.Join(dir, "pd.img"), filepath.Join(dir, "ro.img")
	orig := bytes.Repeat([]byte("P"), 1<<20)
	for _, p := range []string{pd, ro} {
		if err := os.WriteFile(p, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	toml := img.Profile + fmt.Sprintf("disks = [{path = %q, id = \"pd\"}, {path = %q, id = \"ro\", readonly = true}]\n", pd, ro)
	path := filepath.Join(dir, "provium.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, cfg)
	ctx := context.Background()
	patience := 180 * time.Second // a loaded TCG host boots slowly
	m, err := b.ForFile("d.test.lua").Start(ctx, lab.BootSpec{Name: "d", Path: "d", Profile: "linux",
		Opts: lab.BootOpts{AgentTimeout: &patience, Disks: []lab.DiskSpec{{ID: "b", Source: lab.DiskScratch, Size: 1 << 20}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	g := m.(*Machine)
	if ids := strings.Join(g.DiskIDs(), ","); ids != "pd,ro,b" {
		t.Fatalf("disk order %s, want pd,ro,b", ids)
	}
	ag, err := g.Agent()
	if err != nil {
		t.Fatal(err)
	}
	sh := func(cmd string) proto.ExecResult {
		r, err := ag.Exec(ctx, proto.ExecReq{Cmd: cmd, Shell: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	out := sh("for d in vda vdb vdc; do echo $d $(cat /sys/block/$d/serial) $(cat /sys/block/$d/ro); done")
	want := "vda pd 0\nvdb ro 1\nvdc b 0\n"
	if string(out.Stdout) != want {
		t.Fatalf("guest disks:\n%s\nwant:\n%s", out.Stdout, want)
	}
	if r := sh("printf XXXX | dd of=/dev/vda bs=4 conv=fsync 2>&1"); r.ExitCode != 0 {
		t.Fatalf("writing the profile disk copy: %s", r.Stdout)
	}
	if r := sh("printf XXXX | dd of=/dev/vdb bs=4 conv=fsync 2>&1"); r.ExitCode == 0 {
		t.Fatal("the readonly profile disk accepted a write")
	}
	copyImg, ok := g.DiskImage("pd")
	if !ok || copyImg.Path == pd {
		t.Fatalf("profile disk used in place: %+v", copyImg)
	}
	got, _ := os.ReadFile(copyImg.Path)
	if string(got[:4]) != "XXXX" {
		t.Fatalf("the guest's write is not in the per-VM copy: %q", got[:4])
	}
	for _, p := range []string{pd, ro} {
		if b, _ := os.ReadFile(p); !bytes.Equal(b, orig) {
			t.Fatalf("%s changed", p)
		}
	}
}
