#!/usr/bin/env bash
# Installs what Provium needs to build and run on Debian 12: the static Lua
# 5.4 library for the cgo binding, QEMU (and qemu-utils: qemu-io, qemu-nbd
# for the NBD server's tests and benchmark), busybox-static, cpio, zstd,
# xz-utils (the default image's kernel payload is XZ) and musl-tools (the
# guest's worker executor is a small static C program). Packages already
# present are left alone; apt-get runs only when something is missing.
set -euo pipefail

need=()
for pkg in liblua5.4-dev qemu-system-x86 qemu-system-data qemu-utils busybox-static cpio zstd xz-utils musl-tools; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
