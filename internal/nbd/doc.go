// Package nbd serves mediated disks: a Network Block Device server
// (fixed-newstyle handshake, simple replies; READ, WRITE, FLUSH, TRIM, DISC
// and the FUA flag) that QEMU's `nbd` block driver reaches over a unix
// socket (40-guest-and-infra.md §7).
//
// Serving the disk ourselves is what lets a test see what a guest would see
// after a crash: guest writes are held in an overlay until the guest
// flushes (FLUSH, or a write with FUA), PowerCut drops them, and a fault
// policy (failed reads/writes, fail-after-n, failing sector ranges, delays,
// and the Disk API's fault_inject modes) applies to the guest's own I/O.
//
// One Export is one disk image; it may serve several connections at once
// (qemu-img and the guest, say), all sharing the overlay.
package nbd
