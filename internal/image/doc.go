// Package image builds Provium's default Linux guest image from Debian
// packages (`provium image build`): the linux-image-*-amd64 kernel both as
// its bzImage and as the uncompressed ELF vmlinux that boots through the PVH
// entry point (much faster under TCG: no in-guest decompression), the
// modules the agent loads at boot with a matching modules.dep/modules.alias,
// and busybox-static with its applet links, packed into a reproducible
// initrd without an /init (the agent, appended at boot, runs standalone).
package image
