// Command provium runs Lua tests against real QEMU guests.
package main

import (
	"os"

	"github.com/provium/provium/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
