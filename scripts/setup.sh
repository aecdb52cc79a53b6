#!/bin/sh
# Install what bpfkit's demo and tests need, idempotently and quickly when all is there.
# Debian packages (clang-19, libbpf-dev...), a .venv with bpfkit in editable mode, and the
# bpffs/tracefs/debugfs mounts.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bpfkit set-up must run as root (it installs Debian packages, mounts bpffs and loads BPF programs): run it with sudo." >&2
    exit 1
fi

PKGS="clang-19 llvm-19 libbpf-dev bpftool iproute2 gcc libc6-dev make python3-venv util-linux procps prometheus bpftrace systemtap-sdt-dev openssl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.bpfkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing bpfkit (editable) and test tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test,dev]'
    touch "$stamp"
fi

mountfs() { # type dir
    if ! grep -q " $2 $1 " /proc/mounts; then
        mkdir -p "$2"
        mount -t "$1" "$1" "$2" || echo "setup: could not mount $1 on $2" >&2
    fi
}
mountfs bpf /sys/fs/bpf
mountfs tracefs /sys/kernel/tracing
mountfs debugfs /sys/kernel/debug
exit 0
