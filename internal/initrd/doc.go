// Package initrd writes the initramfs pieces Provium hands to a guest kernel:
// cpio "newc" archives of its own making (exact and reproducible: uid/gid 0,
// mtime 0, entries sorted, parents created), wrapped as gzip members so the
// kernel finds each appended segment at any byte offset, and the merged boot
// initrd (profile initrd ++ agent overlay ++ per-boot files archive) whose
// first two parts are cached by content hash.
package initrd
