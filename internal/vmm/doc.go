// Package vmm runs guests in QEMU behind a small surface, so that
// internal/lab never needs to know a QEMU flag:
//
//   - Config is plain data; Config.Argv is the exact command line, a pure
//     function that can be printed and tested without starting QEMU.
//   - Start runs a Machine; a Machine pauses, resumes, resets, presses the
//     power button, hot-plugs NICs and disks, snapshots itself, and ends with
//     Quit. Restore starts a Machine from a snapshot.
//   - Wait/Done say how a machine ended: guest poweroff, guest panic, Quit,
//     or an unexpected exit.
//   - The serial console is captured (Console), the agent's virtio-serial
//     port is reachable (AgentConn), QMP is ours (QMP).
//   - RunDir/SweepDeadRuns keep scratch directories from outliving runs;
//     HasPVHNote tells whether a kernel can boot through PVH.
package vmm
