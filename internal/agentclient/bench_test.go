package agentclient_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agent"
	"github.com/provium/provium/internal/proto"
)

// BenchmarkPing measures one op round trip (stream open, request, reply)
// through yamux over an in-process pipe: the protocol's own overhead.
func BenchmarkPing(b *testing.B) {
	c := startSession(b, &agent.Server{}).c
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFile8MiB measures bulk transfer through the chunked stream.
func BenchmarkReadFile8MiB(b *testing.B) {
	c := startSession(b, &agent.Server{}).c
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(8 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.ReadFile(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyscall measures one agent syscall round trip: getpid, which
// changes no thread state and runs on any agent thread, and gettid, which
// gets a call thread of its own (callthread.go).
func BenchmarkSyscall(b *testing.B) {
	for _, nr := range []struct {
		name string
		nr   int64
	}{{"getpid", unix.SYS_GETPID}, {"gettid", unix.SYS_GETTID}} {
		b.Run(nr.name, func(b *testing.B) {
			c := startSession(b, &agent.Server{}).c
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Syscall(ctx, proto.SyscallReq{Nr: nr.nr}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
