// Command provium runs Lua tests against real QEMU guests.
package main

import (
	"os"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/cli"
)

func main() {
	// First: when started as the KVM probe child, probe and exit.
	accel.MaybeRunProbeChild()
	os.Exit(cli.Main(os.Args[1:]))
}
