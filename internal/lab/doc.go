// Package lab is Provium's core object graph: labs, their scopes, VMs and
// bridges, and the rules that bind them (naming, lookup through parent scopes,
// shadowing, membership, the VM state machine, staged boot options, barriers
// and the auto-close walk).
//
// The Lua layer (internal/luaapi) is a thin adapter over this package: it
// converts Lua values to Go values, calls one method here and converts the
// result back. Every business rule lives here, once, so it can be tested
// without Lua. Error texts are the Lua-visible messages of the specification
// (10-lua-api.md); the adapter raises them verbatim.
//
// Nothing here starts QEMU: a VM reaches a running guest only through the
// Backend interface, which the VM core (internal/vmm) will implement.
//
// Choices where the spec is silent (keep in step with the project docs):
//
//   - Members are keyed by (kind, name): a VM and a bridge may share a name;
//     duplicates and shadowing are checked within one kind.
//   - A wrong-state error lists the allowed states in table order as prose:
//     "booted", "booted or paused", "created, shutdown or dead".
//   - Boot option messages index arrays 1-based (`boot_opts.disks[1]`), the
//     position a test author sees; default disk ids stay 0-based (`boot0`), so
//     booting again with the same id-less disks replaces rather than doubles.
//   - Integer options accept floats with an exact integer value, as
//     luaL_checkinteger does.
//   - Sub-labs own no scope: their VMs and bridges close with the scope of the
//     lab that created them (a test-scope sub-lab ends with its test).
//   - Shadowing a sub-lab suggests `provium.<name>` to reuse it, since
//     `provium:lab(name)` only returns local sub-labs.
//   - A barrier arrival that times out withdraws, so the round keeps counting
//     only callers that still wait; a later call with another count while a
//     round is open is an error.
//   - A bridge attach of a name binds to the VM found through the bridge's
//     creating lab and its parents; an unknown name stays graph-only and
//     binds once such a VM exists. Two different VMs with one name on one
//     bridge are refused (`<vm>.<bridge>` must name one guest).
package lab
