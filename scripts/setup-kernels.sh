#!/bin/sh
# Install what `make test-kernels` needs to boot other kernels under QEMU, idempotently and
# quickly when all is there: QEMU (TCG; KVM is not usable on our machines), a static busybox
# for the guest's init, and the Debian kernels named on the command line (default: the ones
# test-kernels runs on). --no-install-recommends keeps QEMU from pulling in ~200 GUI packages.
#
#   scripts/setup-kernels.sh [KERNEL_VERSION...]    e.g. 6.1.0-50-amd64 6.12.117+deb12-cloud-amd64
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "setup-kernels: must run as root (it installs Debian packages): run it with sudo." >&2
    exit 1
fi

[ $# -gt 0 ] || set -- 6.1.0-50-amd64 6.12.117+deb12-cloud-amd64
# zstd: Python < 3.14 cannot decompress the -cloud kernels' zstd payload by itself.
PKGS="qemu-system-x86 busybox-static zstd"
for kver in "$@"; do PKGS="$PKGS linux-image-$kver"; done

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The cloud kernels have no 9p: their files are shared over virtiofs, whose daemon comes with
# QEMU 7.2 (later Debian releases ship it separately as `virtiofsd`).
if [ -z "$missing" ] && [ ! -x /usr/lib/qemu/virtiofsd ] && [ ! -x /usr/libexec/virtiofsd ]; then
    missing=" virtiofsd"
fi
if [ -n "$missing" ]; then
    echo "setup-kernels: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
exit 0
