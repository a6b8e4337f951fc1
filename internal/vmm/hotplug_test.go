package vmm

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// pciCountScript makes the guest report how many PCI devices it sees, again
// and again, so the test can watch hot-plug from the guest's side.
const pciCountScript = `/bin/busybox mkdir -p /sys /proc /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t sysfs sys /sys
echo ` + marker + `
while true; do echo "pci:$(ls /sys/bus/pci/devices | wc -l)"; sleep 0.2; done
`

var pciLine = regexp.MustCompile(`pci:(\d+)\r?\n`)

// waitPCICount reads the console from off until the guest reports a count
// for which ok holds.
func waitPCICount(t *testing.T, ctx context.Context, m *Machine, off int64, ok func(int) bool) (int, int64) {
	t.Helper()
	var partial []byte
	for {
		data, next, err := m.Console().ReadSince(ctx, off)
		if err != nil {
			t.Fatalf("waiting for a PCI count: %v\nconsole: %q", err, m.ConsoleTail(10))
		}
		off = next
		data = append(partial, data...)
		complete := data[:bytes.LastIndexByte(data, '\n')+1]
		partial = bytes.Clone(data[len(complete):])
		for _, mm := range pciLine.FindAllSubmatch(complete, -1) {
			n, _ := strconv.Atoi(string(mm[1]))
			if ok(n) {
				return n, off
			}
		}
	}
}

func TestHotplugDiskAndNIC(t *testing.T) {
	cfg := testConfig(t, pciCountScript)
	m, _ := startMachine(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	base, off := waitPCICount(t, ctx, m, 0, func(int) bool { return true })

	img := filepath.Join(filepath.Dir(cfg.Scratch), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.AttachDisk(ctx, Disk{ID: "disk9", Path: img}); err != nil {
		t.Fatal(err)
	}
	if err := m.AttachDisk(ctx, Disk{ID: "disk9", Path: img}); err == nil {
		t.Error("the same id attached twice")
	}
	_, off = waitPCICount(t, ctx, m, off, func(n int) bool { return n == base+1 })

	if err := m.Detach(ctx, "disk9"); err != nil {
		t.Fatal(err)
	}
	waitPCICount(t, ctx, m, off, func(n int) bool { return n == base })
	// The backend is gone too: the node name is free again.
	if err := m.AttachDisk(ctx, Disk{ID: "disk9", Path: img}); err != nil {
		t.Errorf("re-attach after detach: %v", err)
	}
	if err := m.Detach(ctx, "nope"); err == nil {
		t.Error("detaching an unknown device succeeded")
	}
	_, off = waitPCICount(t, ctx, m, off, func(n int) bool { return n == base+1 })

	// A NIC: QEMU connects to the switch's socket (here a bare listener).
	sock := filepath.Join(filepath.Dir(cfg.Scratch), "sw.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	if err := m.AttachNIC(ctx, NIC{ID: "net0", Socket: sock, MAC: "52:54:00:12:34:56"}); err != nil {
		t.Fatal(err)
	}
	if c, ok := <-accepted; ok {
		defer c.Close()
	} else {
		t.Fatal("QEMU did not connect to the switch socket")
	}
	_, off = waitPCICount(t, ctx, m, off, func(n int) bool { return n == base+2 })
	if err := m.SetLink(ctx, "net0", false); err != nil {
		t.Error(err)
	}
	if err := m.Detach(ctx, "net0"); err != nil {
		t.Fatal(err)
	}
	waitPCICount(t, ctx, m, off, func(n int) bool { return n == base+1 })
}
