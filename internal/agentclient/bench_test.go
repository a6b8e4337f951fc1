package agentclient_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/provium/provium/internal/agent"
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
