#!/bin/sh
# Build the image of deploy/Containerfile and check it: bpfkit runs as the non-root user
# with only the capabilities the DaemonSet grants, the exporter attaches and serves metrics,
# and the image holds no compiler.
#
# No container registry is reachable from CI, so the base image is a Debian bookworm made
# with debootstrap from the Debian mirror (cached under /var/cache/bpfkit-ci). buildah builds
# with chroot isolation: these VMs run no container engine, and crun cannot set the rlimits
# podman asks for here (no CAP_SYS_RESOURCE).
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE=/var/cache/bpfkit-ci
BASE=localhost/bpfkit-ci-bookworm:latest
IMAGE=localhost/bpfkit:ci

need=""
for p in buildah debootstrap libcap2-bin; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    echo "test-container: installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    mkdir -p "$CACHE"
    if [ ! -f "$CACHE/bookworm-minbase.tar" ]; then
        echo "test-container: debootstrap bookworm (once; cached in $CACHE)"
        rm -rf "$CACHE/root"
        debootstrap --variant=minbase bookworm "$CACHE/root" http://deb.debian.org/debian >/dev/null
        tar -C "$CACHE/root" -cf "$CACHE/bookworm-minbase.tar.tmp" .
        mv "$CACHE/bookworm-minbase.tar.tmp" "$CACHE/bookworm-minbase.tar"
        rm -rf "$CACHE/root"
    fi
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    tar -C "$mnt" -xf "$CACHE/bookworm-minbase.tar"
    buildah umount "$ctr" >/dev/null
    buildah commit -q "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
fi

rm -rf dist
$PY scripts/dist.py --outdir dist >/dev/null
echo "test-container: building $IMAGE from deploy/Containerfile"
buildah bud -q --isolation chroot --build-arg BASE="$BASE" -f deploy/Containerfile \
    -t "$IMAGE" . >/dev/null

ctr=$(buildah from --security-opt seccomp=unconfined "$IMAGE")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
CAPS="--cap-add CAP_BPF --cap-add CAP_PERFMON --cap-add CAP_NET_ADMIN --cap-add CAP_DAC_READ_SEARCH"
run() { buildah run --isolation chroot $CAPS "$ctr" -- "$@"; }

fail() { echo "test-container: FAILED: $*" >&2; exit 1; }
[ "$(run id -u)" = 10001 ] || fail "the image does not run as uid 10001"
run sh -c 'command -v clang || command -v gcc || command -v cc' >/dev/null 2>&1 \
    && fail "a compiler is in the runtime image"
run /usr/local/bin/bpfkit --help | grep -q execsnoop || fail "bpfkit --help"
out=$(run /usr/local/bin/bpfkit export --once execs syscalls 2>&1) || fail "export: $out"
echo "$out" | grep -q '^# TYPE bpf_execs_total counter' || fail "no bpf_execs_total in: $out"
echo "$out" | grep -q 'bpfkit_export_probe_attached{.*} 1' || fail "nothing attached: $out"
echo "test-container: ok: $IMAGE runs as uid 10001 with CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_DAC_READ_SEARCH; export attached; no compiler"
