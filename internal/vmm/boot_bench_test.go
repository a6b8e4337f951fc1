package vmm

import (
	"context"
	"testing"
)

// BenchmarkBootToMarker measures Start → marker on the console → Quit under
// the machine's accelerator (TCG here), with and without spare hot-plug
// ports (each is a PCI bridge the guest enumerates).
//
//	go test -run XXX -bench BootToMarker -benchtime 3x ./internal/vmm
func BenchmarkBootToMarker(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ports int
	}{{"ports=0", -1}, {"ports=4", 4}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchBootOnce(b, bc.ports)
			}
		})
	}
}

func benchBootOnce(b *testing.B, ports int) {
	b.StopTimer()
	cfg := testConfig(b, "/bin/busybox echo "+marker+"\n/bin/busybox sleep 100000\n")
	cfg.HotplugPorts = ports
	b.StartTimer()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Quit(context.Background())
	if _, err := m.Console().WaitFor(ctx, 0, []byte(marker)); err != nil {
		b.Fatal(err)
	}
}
