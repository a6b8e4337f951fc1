package cli

import (
	"context"

	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// defaultRunFile is the real runner.
func defaultRunFile(ctx context.Context, f runner.File, opts *runner.Options) *result.File {
	return runner.RunFile(ctx, f, opts)
}
