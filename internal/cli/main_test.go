package cli

import (
	"os"
	"testing"

	"github.com/provium/provium/internal/accel"
)

// TestMain lets this test binary serve as the KVM probe child: run mode
// probes by re-executing its own binary (internal/accel).
func TestMain(m *testing.M) {
	accel.MaybeRunProbeChild()
	os.Exit(m.Run())
}
