// Command provium-coverage reports the test outcomes of a provium event
// stream grouped by a meta key (30-runtime.md C7).
package main

import (
	"os"

	"github.com/provium/provium/internal/coverage"
)

func main() {
	os.Exit(coverage.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
