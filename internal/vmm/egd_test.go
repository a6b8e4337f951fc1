package vmm

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
)

// Fake QEMU side (net.Pipe): a guest-driven rng-egd request needs a guest
// with the virtio-rng module loaded, which the test initrd does not have.
func TestServeEGDFakeQEMU(t *testing.T) {
	qemu, provium := net.Pipe()
	defer qemu.Close()
	src := bytes.NewReader(bytes.Repeat([]byte("0123456789"), 100))
	errc := make(chan error, 1)
	go func() { errc <- ServeEGD(context.Background(), provium, src) }()

	got := make([]byte, 0, 20)
	for _, n := range []byte{3, 17} {
		if _, err := qemu.Write([]byte{egdReadBlocking, n}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(qemu, b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if string(got) != "01234567890123456789" {
		t.Errorf("stream %q", got)
	}
	qemu.Close()
	if err := <-errc; err != nil {
		t.Errorf("end on close: %v", err)
	}

	// Cancellation ends the server too.
	qemu2, provium2 := net.Pipe()
	defer qemu2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- ServeEGD(ctx, provium2, src) }()
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Errorf("end on cancel: %v", err)
	}
}
