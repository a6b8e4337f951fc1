package nbd

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// qemuIO runs QEMU's own NBD client against sock with cache=none (a
// writeback cache, as the guest's disks use: plain writes, then flushes).
func qemuIO(t *testing.T, sock string, cmds ...string) string {
	t.Helper()
	out, err := runQEMUIO(t, sock, cmds...)
	if err != nil {
		t.Fatalf("qemu-io %v: %v\n%s", cmds, err, out)
	}
	return out
}

func runQEMUIO(t *testing.T, sock string, cmds ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("qemu-io")
	if err != nil {
		t.Skip("qemu-io not installed (apt package qemu-utils; scripts/install-deps.sh)")
	}
	args := []string{"-f", "raw", "-t", "none"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	args = append(args, "nbd+unix:///?socket="+sock)
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func TestQEMUClientWritesReadsFlushes(t *testing.T) {
	e, img, sock := newTestExport(t, 4<<20, Options{})
	out := qemuIO(t, sock, "write -P 0xab 65536 131072", "read -P 0xab 65536 131072", "flush")
	if strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("qemu-io read back the wrong data:\n%s", out)
	}
	if !bytes.Equal(fileAt(t, img, 65536, 131072), bytes.Repeat([]byte{0xab}, 131072)) {
		t.Fatal("qemu-io's flushed write is not in the image")
	}
	cs := e.Counters()
	if cs.Writes == 0 || cs.Reads == 0 || cs.Flushes == 0 {
		t.Fatalf("counters %+v: qemu-io's requests were not all seen", cs)
	}
}

func TestQEMUClientUnflushedWriteLostOnPowerCut(t *testing.T) {
	e, img, sock := newTestExport(t, 4<<20, Options{})
	// qemu-io flushes when it closes the image, so hold the data by
	// failing that flush: the write itself succeeds, then nothing is
	// durable.
	e.Control().FailAfter(1)
	qemuIO(t, sock, "write -P 0xcd 0 4096")
	if n := e.PowerCut(); n != 1 {
		t.Fatalf("PowerCut dropped %d writes, want 1", n)
	}
	e.Control().ClearPolicy()
	if bytes.Equal(fileAt(t, img, 0, 4096), bytes.Repeat([]byte{0xcd}, 4096)) {
		t.Fatal("an unflushed write reached the image")
	}
	out := qemuIO(t, sock, "read -P 0x11 0 4096")
	if strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("after the power cut QEMU still reads the lost write:\n%s", out)
	}
}

func TestQEMUClientSeesEIO(t *testing.T) {
	e, _, sock := newTestExport(t, 4<<20, Options{})
	if err := e.Control().FailRange(16, 8); err != nil {
		t.Fatal(err)
	}
	out, _ := runQEMUIO(t, sock, "read 0 4096", "read 8192 4096") // exits 1 on the failed read
	if !strings.Contains(out, "read failed: Input/output error") {
		t.Fatalf("qemu-io did not report EIO for the failing range:\n%s", out)
	}
	if strings.Count(out, "read 4096/4096 bytes") != 1 {
		t.Fatalf("the read outside the range should succeed:\n%s", out)
	}
}
