package agentclient_test

import (
	"context"
	"fmt"
	"os"

	"testing"

	"github.com/provium/provium/internal/agentbin"
)

// workerExe is the worker executor (cmd/provium-worker) the in-process
// agents start for spawn_worker, built once from this checkout.
var workerExe string

func TestMain(m *testing.M) {
	p, err := (&agentbin.Locator{}).WorkerPath(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "build the worker executor:", err)
		os.Exit(1)
	}
	workerExe = p
	os.Exit(m.Run())
}
