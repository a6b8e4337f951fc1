package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// egdReadBlocking is the one EGD command QEMU's rng-egd backend sends:
// 0x02 <n>, answered by exactly n bytes.
const egdReadBlocking = 0x02

// ServeEGD answers QEMU's rng-egd requests on conn with bytes from src, until
// ctx ends, conn closes or src fails. It is how a seeded VM's virtio-rng gets
// a reproducible stream (RNGServed: dial Config.RNGSocket() and serve it).
// A closed connection (QEMU gone) is a normal end and returns nil.
func ServeEGD(ctx context.Context, conn net.Conn, src io.Reader) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var hdr [2]byte
	buf := make([]byte, 255)
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("vmm: rng: reading request: %w", err)
		}
		if hdr[0] != egdReadBlocking {
			return fmt.Errorf("vmm: rng: unsupported EGD command %#x", hdr[0])
		}
		n := int(hdr[1])
		if _, err := io.ReadFull(src, buf[:n]); err != nil {
			return fmt.Errorf("vmm: rng: reading source: %w", err)
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("vmm: rng: answering: %w", err)
		}
	}
}
