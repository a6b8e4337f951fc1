package nbd

import (
	"bytes"
	"os"
	"runtime"
	"testing"
	"time"
)

func fileAt(t *testing.T, path string, off, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[off : off+n]
}

func TestHandshakeGoAndExportName(t *testing.T) {
	for _, useGo := range []bool{true, false} {
		_, _, sock := newTestExport(t, 1<<20, Options{Name: "d"})
		c := dialTest(t, sock, useGo)
		if c.size != 1<<20 {
			t.Fatalf("go=%t: size %d, want %d", useGo, c.size, 1<<20)
		}
		want := uint16(tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim)
		if c.flags != want {
			t.Fatalf("go=%t: flags %#x, want %#x", useGo, c.flags, want)
		}
		if data, errno := c.read(t, 4096, 512); errno != 0 || !bytes.Equal(data, bytes.Repeat([]byte{0x11}, 512)) {
			t.Fatalf("go=%t: read errno %d data %x", useGo, errno, data[:8])
		}
	}
}

func TestWritesHeldUntilFlush(t *testing.T) {
	e, img, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	payload := bytes.Repeat([]byte("A"), 1024)
	if errno := c.write(t, 8192, payload, 0); errno != 0 {
		t.Fatalf("write errno %d", errno)
	}
	if got, _ := c.read(t, 8192, 1024); !bytes.Equal(got, payload) {
		t.Fatal("guest does not read back its unflushed write")
	}
	host := make([]byte, 1024)
	if _, err := e.ReadAt(host, 8192); err != nil || !bytes.Equal(host, payload) {
		t.Fatalf("host view misses the unflushed write: %v", err)
	}
	if got := fileAt(t, img, 8192, 1024); bytes.Equal(got, payload) {
		t.Fatal("unflushed write reached the image")
	}
	if _, err := e.ReadCommittedAt(host, 8192); err != nil || !bytes.Equal(host, fileAt(t, img, 8192, 1024)) || bytes.Equal(host, payload) {
		t.Fatalf("committed view shows the unflushed write (%v): %q", err, host[:8])
	}
	if e.Unflushed() != 1 {
		t.Fatalf("unflushed = %d, want 1", e.Unflushed())
	}
	if errno := c.flush(t); errno != 0 {
		t.Fatalf("flush errno %d", errno)
	}
	if _, err := e.ReadCommittedAt(host, 8192); err != nil || !bytes.Equal(host, payload) {
		t.Fatalf("committed view misses the flushed write (%v)", err)
	}
	if got := fileAt(t, img, 8192, 1024); !bytes.Equal(got, payload) {
		t.Fatal("flushed write is not in the image")
	}
	if e.Unflushed() != 0 {
		t.Fatalf("unflushed = %d after flush", e.Unflushed())
	}
}

func TestPowerCutDropsUnflushedOnly(t *testing.T) {
	e, img, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	c.write(t, 0, bytes.Repeat([]byte("S"), 512), 0)
	c.flush(t)
	c.write(t, 512, bytes.Repeat([]byte("U"), 512), 0)
	c.write(t, 1024, bytes.Repeat([]byte("V"), 512), 0)
	if n := e.PowerCut(); n != 2 {
		t.Fatalf("PowerCut = %d, want 2", n)
	}
	got, _ := c.read(t, 0, 1536)
	want := append(bytes.Repeat([]byte("S"), 512), bytes.Repeat([]byte{0x11}, 1024)...)
	if !bytes.Equal(got, want) {
		t.Fatal("after a power cut the guest must see the flushed data and nothing else")
	}
	if !bytes.Equal(fileAt(t, img, 0, 1536), want) {
		t.Fatal("image differs from the guest view after the power cut")
	}
}

func TestFUAWriteIsDurable(t *testing.T) {
	e, img, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	payload := bytes.Repeat([]byte("F"), 4096)
	if errno := c.write(t, 4096, payload, cmdFlagFUA); errno != 0 {
		t.Fatalf("errno %d", errno)
	}
	if !bytes.Equal(fileAt(t, img, 4096, 4096), payload) {
		t.Fatal("FUA write is not in the image")
	}
	if n := e.PowerCut(); n != 0 {
		t.Fatalf("a FUA write counted as unflushed (%d)", n)
	}
}

func TestPartialSectorWritesMerge(t *testing.T) {
	_, _, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	c.write(t, 700, []byte("hello"), 0) // inside sector 1
	c.write(t, 510, []byte("wxyz"), 0)  // straddles sectors 0 and 1
	got, _ := c.read(t, 0, 1024)
	want := bytes.Repeat([]byte{0x11}, 1024)
	copy(want[700:], "hello")
	copy(want[510:], "wxyz")
	if !bytes.Equal(got, want) {
		t.Fatal("partial sector writes were not merged with the current view")
	}
}

func TestHostWriteIsDurableAndVisible(t *testing.T) {
	e, img, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	c.write(t, 0, bytes.Repeat([]byte("G"), 1024), 0)
	if err := e.WriteDurable([]byte("host"), 100); err != nil {
		t.Fatal(err)
	}
	got, _ := c.read(t, 0, 8)
	if string(got[:4]) != "GGGG" {
		t.Fatalf("guest lost its write: %q", got)
	}
	got, _ = c.read(t, 100, 4)
	if string(got) != "host" {
		t.Fatalf("guest does not see the host write: %q", got)
	}
	e.PowerCut()
	if string(fileAt(t, img, 100, 4)) != "host" {
		t.Fatal("host write did not survive a power cut")
	}
	got, _ = c.read(t, 0, 4)
	if !bytes.Equal(got, []byte{0x11, 0x11, 0x11, 0x11}) {
		t.Fatalf("unflushed guest data survived the power cut: %q", got)
	}
}

func TestOverlaySpillsBeyondMemLimit(t *testing.T) {
	e, img, sock := newTestExport(t, 1<<20, Options{MemLimit: 4096})
	c := dialTest(t, sock, true)
	payload := make([]byte, 64<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	c.write(t, 0, payload, 0)
	if !e.ov.spilled() {
		t.Fatal("64 KiB held with a 4 KiB memory limit did not spill")
	}
	if got, _ := c.read(t, 0, uint32(len(payload))); !bytes.Equal(got, payload) {
		t.Fatal("spilled sectors read back wrong")
	}
	c.flush(t)
	if !bytes.Equal(fileAt(t, img, 0, len(payload)), payload) {
		t.Fatal("spilled sectors were not flushed")
	}
}

func TestFaultPolicy(t *testing.T) {
	e, _, sock := newTestExport(t, 1<<20, Options{})
	ctl := e.Control()
	c := dialTest(t, sock, true)
	data := bytes.Repeat([]byte("x"), 512)

	ctl.FailReads()
	if _, errno := c.read(t, 0, 512); errno != errIO {
		t.Fatalf("fail_reads: read errno %d, want EIO", errno)
	}
	if errno := c.write(t, 0, data, 0); errno != 0 {
		t.Fatalf("fail_reads: write errno %d, want 0", errno)
	}
	ctl.ClearPolicy()
	ctl.FailWrites()
	if errno := c.write(t, 0, data, 0); errno != errIO {
		t.Fatalf("fail_writes: errno %d", errno)
	}
	if _, errno := c.read(t, 0, 512); errno != 0 {
		t.Fatalf("fail_writes: read errno %d", errno)
	}
	ctl.ClearPolicy()

	ctl.FailAfter(2)
	if _, errno := c.read(t, 0, 512); errno != 0 {
		t.Fatal("fail_after(2): first request failed")
	}
	if errno := c.flush(t); errno != 0 {
		t.Fatal("fail_after(2): second request failed")
	}
	if _, errno := c.read(t, 0, 512); errno != errIO {
		t.Fatal("fail_after(2): third request succeeded")
	}
	if p := ctl.Policy(); p.FailAfter == nil || *p.FailAfter != 0 {
		t.Fatalf("remaining = %v, want 0", p.FailAfter)
	}
	ctl.ClearPolicy()

	if err := ctl.FailRange(8, 2); err != nil {
		t.Fatal(err)
	}
	if _, errno := c.read(t, 7*512, 512); errno != 0 {
		t.Fatal("fail_range: sector 7 failed")
	}
	if _, errno := c.read(t, 9*512+511, 1); errno != errIO {
		t.Fatal("fail_range: last byte of sector 9 did not fail")
	}
	if errno := c.write(t, 6*512, make([]byte, 1024+1), 0); errno != errIO {
		t.Fatal("fail_range: write reaching into sector 8 did not fail")
	}
	if _, errno := c.read(t, 10*512, 512); errno != 0 {
		t.Fatal("fail_range: sector 10 failed")
	}
	ctl.ClearPolicy()

	ctl.Inject(FaultEIOWrite)
	if errno := c.write(t, 0, data, 0); errno != errIO {
		t.Fatal("eio_write did not reach guest writes")
	}
	if errno := c.flush(t); errno != 0 {
		t.Fatal("eio_write failed a flush")
	}
	ctl.ClearPolicy() // does not clear fault_inject modes
	if errno := c.write(t, 0, data, 0); errno != errIO {
		t.Fatal("clear_policy cleared a fault_inject mode")
	}
	ctl.ClearFaults()
	ctl.Inject(FaultEIORead)
	if _, errno := c.read(t, 0, 512); errno != errIO {
		t.Fatal("eio_read did not reach guest reads")
	}
	ctl.ClearFaults()

	cs := e.Counters()
	if cs.Reads != 8 || cs.Writes != 5 || cs.Flushes != 2 || cs.Errors != 8 {
		t.Fatalf("counters %+v", cs)
	}
}

func TestDelayAppliesToRequests(t *testing.T) {
	e, _, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	e.Control().SetDelay(30 * time.Millisecond)
	start := time.Now()
	c.read(t, 0, 512)
	// A lower bound only: a loaded machine may add any amount.
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("read took %v with a 30ms delay", d)
	}
}

func TestRejectsBadRequests(t *testing.T) {
	_, _, sock := newTestExport(t, 1<<20, Options{ReadOnly: false})
	c := dialTest(t, sock, true)
	if _, errno := c.read(t, 1<<20-256, 512); errno != errInval {
		t.Fatalf("read past the end: errno %d", errno)
	}
	if errno := c.write(t, 1<<20-256, make([]byte, 512), 0); errno != errNoSpc {
		t.Fatalf("write past the end: errno %d", errno)
	}
	if errno, _, _ := c.do(9, 0, 0, 0, nil); errno != errInval {
		t.Fatalf("unknown command: errno %d", errno)
	}
	// The connection survives every one of them.
	if _, errno := c.read(t, 0, 512); errno != 0 {
		t.Fatal("connection unusable after rejected requests")
	}
}

func TestReadOnlyExport(t *testing.T) {
	_, _, sock := newTestExport(t, 1<<20, Options{ReadOnly: true})
	c := dialTest(t, sock, true)
	if c.flags&tflagReadOnly == 0 {
		t.Fatal("read-only flag not advertised")
	}
	if errno := c.write(t, 0, make([]byte, 512), 0); errno != errPerm {
		t.Fatalf("write on read-only export: errno %d", errno)
	}
}

func TestCloseEndsConnectionsWithoutLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	e, _, sock := newTestExport(t, 1<<20, Options{})
	c := dialTest(t, sock, true)
	e.Control().SetDelay(time.Hour)
	go c.do(cmdRead, 0, 0, 512, nil) // blocks in the delay
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a delayed request")
	}
	c.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}
