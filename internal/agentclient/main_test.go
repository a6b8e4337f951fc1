package agentclient_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/provium/provium/internal/agent"
)

// TestMain lets the test binary act as the agent's worker process: the
// in-process agent re-executes its own executable (this binary) for
// spawn_worker, exactly as the real agent re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == agent.WorkerFlag {
		fd, err := strconv.Atoi(os.Args[2])
		if err == nil {
			err = agent.ServeWorker(context.Background(), &agent.Server{}, fd)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
