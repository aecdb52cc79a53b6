"""Run a command inside another Linux kernel, booted under QEMU, with the host's files.

The kernel bpfkit is developed on lacks kprobes, fentry, lsm... so tests of those hooks can
only pass somewhere else.  This module boots a stock Debian kernel (``linux-image-KVER``)
under QEMU's TCG emulation (KVM is not usable on our machines), shares the host ``/``
read-only with a throw-away tmpfs overlay on top, runs one shell command as root in the
caller's directory and returns its exit status and output.  A boot takes about 2 seconds
because the uncompressed ``vmlinux`` is booted directly through its PVH entry point, which
skips both the firmware and the kernel's self-decompression (slow under emulation).

    python -m bpfkit.testing.vm --kernel 6.1.0-50-amd64 -- uname -r

or from Python::

    code, output = VM().run("6.12.117+deb12-cloud-amd64", "uname -r", timeout=60)

Exit status: the command's own; 124 if the timeout expired; 255 if the guest stopped without
reporting one (kernel panic, failed mount...), in which case the output ends with the tail
of the kernel console to show why.

Files are shared with virtio-9p where the kernel has it (``-amd64`` flavour, as modules)
and virtiofs otherwise (``-cloud-amd64`` flavour, which has no 9p); the command's output
comes back over a virtio-serial port, much faster than the emulated UART.  Everything the
guest writes is lost at power-off except in the ``rw_dirs`` shared read-write.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import secrets
import selectors
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BpfkitError

__all__ = [
    "VM", "GuestKernel", "VMError", "DEFAULT_KERNELS", "EXIT_TIMEOUT", "EXIT_NO_STATUS",
    "ensure_installed", "extract_vmlinux", "main",
]

DEFAULT_KERNELS = ("6.1.0-50-amd64", "6.12.117+deb12-cloud-amd64")
EXIT_TIMEOUT = 124      # as timeout(1)
EXIT_NO_STATUS = 255    # the guest never reported a status: panic, failed mount, QEMU error

QEMU = "qemu-system-x86_64"
VIRTIOFSD_PATHS = ("/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd")
BUSYBOX = "/bin/busybox"
PORT_NAME = "bpfkit.out"


class VMError(BpfkitError):
    """The guest could not be prepared or started (missing kernel, QEMU, busybox...)."""


# --------------------------------------------------------------------------- installing

def _is_static_elf(path: str) -> bool:
    """A dynamically linked busybox cannot run in an initramfs that has no libc."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error, IndexError):
        return False
    if phentsize < 4 or len(table) < phentsize * phnum:
        return False
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:      # PT_INTERP
            return False
    return True


def _virtiofsd() -> str | None:
    return next((p for p in VIRTIOFSD_PATHS if os.access(p, os.X_OK)), None)


def missing_packages(kernels: Iterable[str]) -> list[str]:
    """Debian packages to install before ``kernels`` can be booted (empty when all is there).

    Checks the files themselves, not dpkg, so that it costs nothing when all is in place.
    """
    missing = []
    if shutil.which(QEMU) is None or _virtiofsd() is None:
        missing.append("qemu-system-x86")
    if not _is_static_elf(BUSYBOX):
        missing.append("busybox-static")
    for k in kernels:
        if not os.path.exists(f"/boot/vmlinuz-{k}") or not os.path.isdir(f"/lib/modules/{k}"):
            missing.append(f"linux-image-{k}")
    # Python < 3.14 has no zstd; the -cloud kernels' payload is zstd-compressed.
    if _zstd_decompressor() is None and shutil.which("zstd") is None:
        missing.append("zstd")
    return missing


def ensure_installed(kernels: Iterable[str], *, quiet: bool = False) -> None:
    """Install QEMU, a static busybox and the named Debian kernels if they are missing.

    Idempotent and instant when everything is there; ``--no-install-recommends`` keeps QEMU
    from pulling in some 200 desktop packages.
    """
    missing = missing_packages(kernels)
    if not missing:
        return
    if os.geteuid() != 0:
        raise VMError(f"missing Debian packages {' '.join(missing)}: run as root to install "
                      "them (apt-get install --no-install-recommends ...)")
    if not quiet:
        print(f"bpfkit.testing.vm: installing {' '.join(missing)}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       check=False)
    if r.returncode != 0:
        raise VMError(f"apt-get install {' '.join(missing)} failed: {r.stderr.strip()[-2000:]}")


# --------------------------------------------------------------------------- the kernel

def _zstd_decompressor() -> Callable[[bytes], bytes] | None:
    try:
        from compression import zstd  # Python >= 3.14
    except ImportError:
        return None
    return zstd.decompress


def _cli_decompress(cmd: list[str]) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        if shutil.which(cmd[0]) is None:
            raise VMError(f"{cmd[0]} is needed to decompress this kernel (apt-get install {cmd[0]})")
        return subprocess.run(cmd, input=data, capture_output=True, check=False).stdout
    return run


def _xz(data: bytes) -> bytes:
    return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)


def _lzma(data: bytes) -> bytes:
    return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data)


def _gzip(data: bytes) -> bytes:
    return zlib.decompressobj(31).decompress(data)


def _zstd(data: bytes) -> bytes:
    dec = _zstd_decompressor()
    return dec(data) if dec is not None else _cli_decompress(["zstd", "-dcq"])(data)


# The kernel's compressed payload starts with one of these (CONFIG_KERNEL_*).
_MAGICS: tuple[tuple[bytes, Callable[[bytes], bytes]], ...] = (
    (b"\xfd7zXZ\x00", _xz),
    (b"\x28\xb5\x2f\xfd", _zstd),
    (b"\x1f\x8b", _gzip),
    (b"\x02\x21\x4c\x18", _cli_decompress(["lz4", "-dc"])),
    (b"\x5d\x00\x00", _lzma),
    (b"BZh", _cli_decompress(["bzip2", "-dc"])),
    (b"\x89LZO", _cli_decompress(["lzop", "-dc"])),
)


def _payload(bzimage: bytes) -> bytes | None:
    """The compressed kernel inside an x86 bzImage, located through its setup header.

    Boot protocol >= 2.08 records the payload's offset and length (relative to the
    protected-mode code, which follows the setup sectors) in the header at 0x1f1.
    """
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        return None
    version, = struct.unpack_from("<H", bzimage, 0x206)
    if version < 0x208:
        return None
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(bzimage):
        return None
    return bzimage[start:start + length]


def _has_pvh_note(elf: bytes) -> bool:
    """True if a vmlinux ELF has the Xen PHYS32_ENTRY note QEMU needs to boot it directly."""
    try:
        if len(elf) < 64 or elf[:4] != b"\x7fELF" or elf[4] != 2:     # ELF64 only
            return False
        phoff, = struct.unpack_from("<Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
        if phentsize < 56 or phoff + phnum * phentsize > len(elf):
            return False
        for i in range(phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", elf, phoff + i * phentsize)
            if p_type != 4:     # PT_NOTE
                continue
            pos, end = p_offset, p_offset + p_filesz
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
                name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
                if name == b"Xen" and ntype == 18:      # XEN_ELFNOTE_PHYS32_ENTRY
                    return True
                pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    except (struct.error, OverflowError):
        return False
    return False


def extract_vmlinux(bzimage_path: str | Path, out: str | Path) -> bool:
    """Write the uncompressed ELF kernel inside ``bzimage_path`` to ``out``.

    Returns False (writing nothing) when the image holds no PVH-bootable ELF, in which case
    the caller boots the bzImage itself, through the firmware: slower but it works.
    """
    data = Path(bzimage_path).read_bytes()
    payload = _payload(data)
    candidates: list[tuple[bytes, Callable[[bytes], bytes]]] = []
    if payload is not None:
        candidates += [(payload, fn) for magic, fn in _MAGICS if payload.startswith(magic)]
    else:   # not a bzImage with a modern header: look for a stream by its magic
        for magic, fn in _MAGICS:
            off = data.find(magic)
            while off >= 0 and len(candidates) < 32:
                candidates.append((data[off:], fn))
                off = data.find(magic, off + 1)
    for blob, fn in candidates:
        try:
            elf = fn(blob)
        except (lzma.LZMAError, zlib.error, EOFError, OSError, ValueError):
            continue
        if _has_pvh_note(elf):
            tmp = Path(f"{out}.tmp{os.getpid()}-{threading.get_ident()}")
            tmp.write_bytes(elf)
            tmp.replace(out)
            return True
    return False


def _kernel_config(kver: str) -> dict[str, str]:
    config: dict[str, str] = {}
    try:
        text = Path(f"/boot/config-{kver}").read_text()
    except OSError:
        return config
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            config[k] = v
    return config


@dataclass
class GuestKernel:
    """One installed Debian kernel and how to boot it."""

    version: str
    image: Path             # what QEMU's -kernel gets: the vmlinux (PVH) or the bzImage
    pvh: bool
    fs: str                 # "9p" or "virtiofs": how the host's files reach the guest
    modules: list[Path] = field(default_factory=list)   # to insmod, dependencies first

    @classmethod
    def find(cls, version: str, cache: Path, fs: str | None = None, pvh: bool = True) -> GuestKernel:
        """Locate ``/boot/vmlinuz-VERSION`` and prepare (once, cached) what booting it needs."""
        vmlinuz = Path(f"/boot/vmlinuz-{version}")
        moddir = Path(f"/lib/modules/{version}")
        if not vmlinuz.exists() or not moddir.is_dir():
            raise VMError(f"kernel {version} is not installed (apt-get install "
                          f"--no-install-recommends linux-image-{version})")
        config = _kernel_config(version)
        if fs is None:
            fs = "9p" if config.get("CONFIG_NET_9P_VIRTIO") in ("y", "m") else "virtiofs"
        if fs not in ("9p", "virtiofs"):
            raise VMError(f"unknown file sharing {fs!r}: use 9p or virtiofs")
        image, booted_pvh = vmlinuz, False
        if pvh:
            vmlinux = cache / f"vmlinux-{version}"
            if not vmlinux.exists() or vmlinux.stat().st_mtime < vmlinuz.stat().st_mtime:
                extract_vmlinux(vmlinuz, vmlinux)
            if vmlinux.exists():
                image, booted_pvh = vmlinux, True
        want = ["virtio_pci", "virtio_console", "overlay"]
        want += ["9p", "9pnet_virtio"] if fs == "9p" else ["virtiofs"]
        return cls(version, image, booted_pvh, fs, _module_closure(moddir, want))


def _modname(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def _module_closure(moddir: Path, names: Sequence[str]) -> list[Path]:
    """The module files that give ``names``, each after what it depends on.

    Reads modules.dep (written by depmod) rather than asking modprobe, so it works for any
    installed kernel; names built into the kernel (modules.builtin) need no file.
    """
    deps: dict[str, tuple[str, list[str]]] = {}
    try:
        for line in (moddir / "modules.dep").read_text().splitlines():
            target, _, rest = line.partition(":")
            deps[_modname(target)] = (target, rest.split())
        builtin = {_modname(x) for x in (moddir / "modules.builtin").read_text().split()}
    except OSError as e:
        raise VMError(f"cannot read the module list of {moddir}: {e}") from e
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in chain:
            return
        if name not in deps:
            if name in builtin:
                return
            raise VMError(f"{moddir.name} has no module {name} (needed to boot it under QEMU)")
        target, dep_paths = deps[name]
        for d in dep_paths:
            visit(_modname(d), chain + (name,))
        seen.add(name)
        order.append(moddir / target)

    for n in names:
        visit(n.replace("-", "_"), ())
    return order


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return _xz(data)
    if path.suffix == ".gz":
        return _gzip(data)
    if path.suffix == ".zst":
        return _zstd(data)
    return data


# --------------------------------------------------------------------------- initramfs

class _Cpio:
    """A "newc" cpio archive, the format the kernel unpacks as its initramfs."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        raw = name.encode() + b"\0"
        nlink = 2 if mode & 0o040000 else 1
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(raw), 0))
        self.ino += 1
        self.buf += hdr.encode() + raw
        self.buf += b"\0" * (-len(self.buf) % 4)
        self.buf += data
        self.buf += b"\0" * (-len(self.buf) % 4)

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self.buf)


# The guest's /init.  It runs from the initramfs with a static busybox, loads the few
# modules needed, mounts the host's / read-only under a tmpfs overlay, mounts the
# pseudo-filesystems BPF tools expect, then runs /run/bpfkit-vm/cmd (written per run) as
# root in the new root, its output on the virtio-serial port, and reports its status.
_INIT = r"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
for m in $($B cat /modules.order); do $B insmod /modules/$m || echo "bpfkit-init: insmod $m failed"; done
. /bpfkit-vm/env
fail() { echo "bpfkit-init: $*"; $B poweroff -f; }
if [ "$FS" = virtiofs ]; then
    $B mount -t virtiofs -o ro hostroot /lower
else
    $B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower
fi || fail "$FS mount of the host / failed"
$B mount -t tmpfs -o mode=0755 rw /rw
$B mkdir -p /rw/upper /rw/work
$B mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "overlay mount failed"
N=/newroot
$B mount -t proc proc $N/proc
$B mount -t sysfs sys $N/sys
$B mount -t devtmpfs dev $N/dev
$B mkdir -p $N/dev/pts $N/dev/shm $N/run $N/tmp
$B mount -t devpts devpts $N/dev/pts
$B mount -t tmpfs shm $N/dev/shm
$B mount -t tmpfs run $N/run
$B mount -t tmpfs tmp $N/tmp
# A working tree under a path the guest covers with its own tmpfs (/tmp, /run, /dev/shm)
# is bound back from the host's read-only /.
for d in $BINDDIRS; do
    $B mkdir -p "$N$d"
    $B mount -o bind "/lower$d" "$N$d" || echo "bpfkit-init: bind mount of $d failed"
done
$B mount -t tracefs tracefs $N/sys/kernel/tracing
$B mount -t debugfs debugfs $N/sys/kernel/debug
$B mount -t bpf bpf $N/sys/fs/bpf
$B mount -t cgroup2 cgroup2 $N/sys/fs/cgroup
[ -d $N/sys/kernel/security ] && $B mount -t securityfs securityfs $N/sys/kernel/security
i=0
for d in $RWDIRS; do
    $B mkdir -p "$N$d"
    if [ "$FS" = virtiofs ]; then
        $B mount -t virtiofs rw$i "$N$d"
    else
        $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap rw$i "$N$d"
    fi || echo "bpfkit-init: read-write $FS mount of $d failed"
    i=$((i + 1))
done
$B mkdir -p $N/run/bpfkit-vm
$B cp /bpfkit-vm/cmd $N/run/bpfkit-vm/cmd
$B hostname bpfkit-vm
OUT=/dev/console
for n in /sys/class/virtio-ports/*/name; do
    [ "$($B cat $n 2>/dev/null)" = PORTNAME ] || continue
    d=${n%/name}; d=${d##*/}
    [ -c /dev/$d ] || $B mknod /dev/$d c $($B sed 's/:/ /' /sys/class/virtio-ports/$d/dev)
    OUT=/dev/$d
done
echo "$MARKER up" >$OUT
$B chroot $N /bin/sh /run/bpfkit-vm/cmd </dev/null >$OUT 2>&1
rc=$?
$B sync
echo "$MARKER $rc" >$OUT
$B poweroff -f
""".replace("PORTNAME", PORT_NAME)


def _base_initramfs(kernel: GuestKernel, cache: Path) -> Path:
    """The per-kernel part of the initramfs (busybox, modules, /init), built once and cached."""
    h = hashlib.sha256(_INIT.encode())
    for p in [Path(BUSYBOX), *kernel.modules]:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    out = cache / f"initramfs-{kernel.version}-{kernel.fs}-{h.hexdigest()[:16]}.cpio"
    if out.exists():
        return out
    c = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "lower", "rw", "newroot", "modules", "bpfkit-vm"):
        c.dir(d)
    c.file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
    names = []
    for m in kernel.modules:
        name = m.name.split(".ko", 1)[0] + ".ko"
        c.file(f"modules/{name}", _module_bytes(m))
        names.append(name)
    c.file("modules.order", ("\n".join(names) + "\n").encode())
    c.file("init", _INIT.encode(), 0o755)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(c.finish())
    tmp.replace(out)
    for old in cache.glob(f"initramfs-{kernel.version}-{kernel.fs}-*.cpio"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------- running

def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpfkit" / "vm"


class VM:
    """Boots Debian kernels under QEMU and runs commands in them.

    One instance holds the settings (memory, CPUs, shared directories...); every
    :meth:`run` boots a fresh guest, so runs share nothing but the rw directories.
    """

    def __init__(self, *, memory_mb: int = 1024, cpus: int = 2,
                 rw_dirs: Sequence[str | Path] = (), cwd: str | Path | None = None,
                 env: Mapping[str, str] | None = None, guest_path: str | None = None,
                 fs: str | None = None, pvh: bool = True, install: bool = True,
                 cache_dir: str | Path | None = None, verbose: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        """``echo`` receives each output line as it arrives (the CLI prints them);
        ``verbose`` prints the kernel's messages on stderr after the run.  ``guest_path`` is
        PATH in the guest (default the caller's): start interpreters by their real path,
        since a pyenv shim costs seconds under emulation."""
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.rw_dirs = [Path(d).resolve() for d in rw_dirs]
        self.cwd = Path(cwd).resolve() if cwd is not None else None
        self.env = dict(env or {})
        self.guest_path = guest_path
        self.fs = fs
        self.pvh = pvh
        self.install = install
        self.cache = Path(cache_dir) if cache_dir is not None else _default_cache()
        self.verbose = verbose
        self.echo = echo
        #: last run: seconds from starting QEMU to the guest starting the command, and to
        #: the command's first line of output
        self.boot_s: float | None = None
        self.first_output_s: float | None = None

    def prepare(self, kernel: str) -> GuestKernel:
        """Install (if allowed) and cache what booting ``kernel`` needs; cheap once done."""
        if self.install:
            ensure_installed([kernel])
        if shutil.which(QEMU) is None:
            raise VMError(f"{QEMU} not found (apt-get install --no-install-recommends qemu-system-x86)")
        if not _is_static_elf(BUSYBOX):
            raise VMError(f"{BUSYBOX} is not a static binary (apt-get install busybox-static)")
        for d in self.rw_dirs:
            if not d.is_dir():
                raise VMError(f"read-write directory {d} does not exist")
        self.cache.mkdir(parents=True, exist_ok=True)
        return GuestKernel.find(kernel, self.cache, fs=self.fs, pvh=self.pvh)

    def _command_script(self, command: str | Sequence[str]) -> str:
        cmd = command if isinstance(command, str) else shlex.join(command)
        cwd = str(self.cwd or Path.cwd())
        env = {"HOME": "/root", "TERM": "dumb", "LANG": "C.UTF-8",
               "PATH": self.guest_path or os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               **self.env}
        for k in env:
            if not k.isidentifier():
                raise VMError(f"invalid environment variable name {k!r}")
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        lines.append(f"cd {shlex.quote(cwd)} || exit 126")
        lines.append(cmd)
        return "\n".join(lines) + "\n"

    def qemu_args(self, kernel: GuestKernel, initrd: Path, console: Path,
                  sockets: Sequence[Path] = ()) -> list[str]:
        """The QEMU command line for one boot (``sockets``: one virtiofsd socket per share)."""
        klog = "loglevel=7" if self.verbose else "quiet loglevel=4"
        mem = f"{self.memory_mb}M"
        args = [QEMU, "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", str(self.cpus),
                "-m", mem, "-nodefaults", "-no-user-config", "-display", "none",
                "-vga", "none", "-net", "none", "-no-reboot", "-monitor", "none",
                "-serial", f"file:{console}",
                "-chardev", "file,id=out,path=/proc/self/fd/1",
                "-device", "virtio-serial-pci,id=vser",
                "-device", f"virtserialport,bus=vser.0,chardev=out,name={PORT_NAME}",
                "-kernel", str(kernel.image), "-initrd", str(initrd),
                # panic=-1 oops=panic: a kernel crash ends the run at once instead of hanging.
                # tsc=unstable: the emulated TSC drifts, and its watchdog messages slow boot.
                "-append", f"console=ttyS0 {klog} panic=-1 oops=panic rdinit=/init "
                           "tsc=unstable mitigations=off"]
        if kernel.fs == "virtiofs":
            # vhost-user devices need the guest's RAM in shared memory
            args += ["-machine", "q35,memory-backend=mem",
                     "-object", f"memory-backend-memfd,id=mem,size={mem},share=on"]
            tags = ["hostroot"] + [f"rw{i}" for i in range(len(self.rw_dirs))]
            for i, (sock, tag) in enumerate(zip(sockets, tags, strict=True)):
                args += ["-chardev", f"socket,id=vfs{i},path={sock}",
                         "-device", f"vhost-user-fs-pci,chardev=vfs{i},tag={tag}"]
        else:
            args += ["-machine", "q35",
                     "-fsdev", "local,id=fsroot,path=/,security_model=none,readonly=on,"
                               "multidevs=remap",
                     "-device", "virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot"]
            for i, d in enumerate(self.rw_dirs):
                args += ["-fsdev", f"local,id=fsrw{i},path={d},security_model=none,multidevs=remap",
                         "-device", f"virtio-9p-pci,fsdev=fsrw{i},mount_tag=rw{i}"]
        return args

    def run(self, kernel: str, command: str | Sequence[str],
            timeout: float = 600.0) -> tuple[int, str]:
        """Boot ``kernel`` (a Debian kernel version), run ``command`` and power off.

        ``command`` is a shell command line, or an argv list.  Returns ``(exit_code,
        output)`` with stdout and stderr interleaved; see the module doc for the codes.
        """
        gk = self.prepare(kernel)
        base = _base_initramfs(gk, self.cache)
        marker = "BPFKIT-VM-STATUS-" + secrets.token_hex(8)
        with tempfile.TemporaryDirectory(prefix="run-", dir=self.cache) as tmp:
            rundir = Path(tmp)
            work = str(self.cwd or Path.cwd())
            binds = [work] if work.startswith(("/tmp/", "/run/", "/dev/shm/")) else []
            env = (f"FS={gk.fs}\nMARKER={marker}\n"
                   f"RWDIRS={shlex.quote(' '.join(str(d) for d in self.rw_dirs))}\n"
                   f"BINDDIRS={shlex.quote(' '.join(binds))}\n")
            for rw in self.rw_dirs:
                if any(c.isspace() for c in str(rw)):
                    raise VMError(f"read-write directory {rw} has blanks in its path")
            c = _Cpio()
            c.file("bpfkit-vm/env", env.encode())
            c.file("bpfkit-vm/cmd", self._command_script(command).encode())
            initrd = rundir / "initrd.cpio"
            with open(initrd, "wb") as f:
                f.write(base.read_bytes())
                f.write(c.finish())     # the kernel unpacks concatenated archives in turn
            console = rundir / "console.log"
            daemons: list[subprocess.Popen[bytes]] = []
            try:
                sockets = self._start_virtiofsd(rundir, daemons) if gk.fs == "virtiofs" else []
                args = self.qemu_args(gk, initrd, console, sockets)
                return self._boot(args, marker, console, rundir, timeout)
            finally:
                for daemon in daemons:
                    daemon.terminate()
                for daemon in daemons:
                    try:
                        daemon.wait(5)
                    except subprocess.TimeoutExpired:
                        daemon.kill()
                        daemon.wait()

    def _start_virtiofsd(self, rundir: Path,
                         daemons: list[subprocess.Popen[bytes]]) -> list[Path]:
        """One virtiofsd per share: the host / (mounted read-only by the guest), then rw dirs.

        QEMU 7.2's C virtiofsd has no read-only mode; the guest's ro mount is what protects
        the host's files.
        """
        daemon = _virtiofsd()
        if daemon is None:
            raise VMError("virtiofsd not found (it comes with qemu-system-x86 on Debian 12)")
        sockets = []
        for i, (src, cache) in enumerate([(Path("/"), "always")] + [(d, "none") for d in self.rw_dirs]):
            sock = rundir / f"vfs{i}.sock"
            daemons.append(subprocess.Popen(
                [daemon, f"--socket-path={sock}", "-o", f"source={src}", "-o", f"cache={cache}",
                 "-o", "sandbox=chroot", "-o", "no_posix_lock", "-o", "log_level=err"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            sockets.append(sock)
        deadline = time.monotonic() + 10
        for sock, proc in zip(sockets, daemons, strict=True):
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise VMError(f"virtiofsd did not start (exit status {proc.poll()})")
                time.sleep(0.01)
        return sockets

    def _boot(self, args: list[str], marker: str, console: Path, rundir: Path,
              timeout: float) -> tuple[int, str]:
        errlog = rundir / "qemu.err"
        t0 = time.monotonic()
        self.first_output_s = self.boot_s = None
        with open(errlog, "wb") as err:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)
        assert proc.stdout is not None
        out_lines: list[str] = []
        status: int | None = None
        pending = b""
        timed_out = False
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        fd = proc.stdout.fileno()
        try:
            while True:
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                if not sel.select(min(left, 1.0)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").removesuffix("\r")
                    at = line.find(marker)      # may follow output that lacks a final newline
                    if at >= 0:
                        word = line[at + len(marker):].strip()
                        if word == "up":        # init is about to start the command
                            self.boot_s = time.monotonic() - t0
                        else:
                            try:
                                status = int(word)
                            except ValueError:
                                status = EXIT_NO_STATUS
                        if at == 0:
                            continue
                        line = line[:at]
                    if self.first_output_s is None:
                        self.first_output_s = time.monotonic() - t0
                    out_lines.append(line)
                    if self.echo is not None:
                        self.echo(line)
        finally:
            sel.close()
            if proc.poll() is None:
                if timed_out:
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(2 if timed_out else 10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            proc.stdout.close()
        if pending:
            tail = pending.decode("utf-8", "replace")
            out_lines.append(tail)
            if self.echo is not None:
                self.echo(tail)
        if self.verbose:
            sys.stderr.write(console.read_text(errors="replace"))
        if timed_out:
            status = EXIT_TIMEOUT
            msg = f"bpfkit.testing.vm: timed out after {timeout:g} s; killed the guest"
        elif status is None:
            status = EXIT_NO_STATUS
            why = errlog.read_text(errors="replace").strip()
            con = _console_tail(console)
            msg = ("bpfkit.testing.vm: the guest stopped without an exit status (QEMU exit "
                   f"status {proc.returncode})" + (f"; QEMU said: {why}" if why else "")
                   + ("; end of the kernel console:\n" + "\n".join(con) if con else ""))
        else:
            msg = ""
        if msg:
            out_lines.append(msg)
            if self.echo is not None:
                self.echo(msg)
        return status, "\n".join(out_lines) + ("\n" if out_lines else "")


def _console_tail(console: Path, lines: int = 40) -> list[str]:
    """The part of the kernel console that says why the guest died: from the first panic
    or oops line when there is one (call traces push it out of a plain tail), else the end."""
    try:
        text = console.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for i, line in enumerate(text):
        if any(w in line for w in ("Kernel panic", "BUG:", "Oops:", "general protection")):
            return text[max(0, i - 3):i + lines]
    return text[-lines:]


# --------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bpfkit.testing.vm --kernel KVER -- COMMAND...``"""
    p = argparse.ArgumentParser(
        prog="python -m bpfkit.testing.vm",
        description="Boot a Debian kernel under QEMU with the host's / (read-only, with a "
                    "throw-away overlay) and run COMMAND in it as root, in this directory.")
    p.add_argument("--kernel", default=DEFAULT_KERNELS[0],
                   help=f"installed Debian kernel version (default {DEFAULT_KERNELS[0]})")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    p.add_argument("--memory", type=int, default=1024, help="guest RAM in MiB (default 1024)")
    p.add_argument("--cpus", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument("--rw", action="append", default=[], metavar="DIR",
                   help="share DIR read-write at the same path (repeatable)")
    p.add_argument("--cwd", help="directory to run COMMAND in (default: the current one)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set an environment variable for COMMAND (repeatable)")
    p.add_argument("--fs", choices=("9p", "virtiofs"),
                   help="how to share files (default: 9p if the kernel has it, else virtiofs)")
    p.add_argument("--no-pvh", action="store_true",
                   help="boot the compressed bzImage through the firmware (slower)")
    p.add_argument("--no-install", action="store_true",
                   help="fail rather than apt-get install what is missing")
    p.add_argument("--install-only", action="store_true",
                   help="install what booting --kernel needs, then exit")
    p.add_argument("--verbose", action="store_true", help="show the kernel's messages")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    a = p.parse_args(argv)
    cmd = list(a.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    try:
        if a.install_only:
            ensure_installed([a.kernel])
            return 0
        if not cmd:
            p.error("no COMMAND given (put it after --)")
        env = {}
        for kv in a.env:
            k, sep, v = kv.partition("=")
            if not sep:
                p.error(f"--env wants NAME=VALUE, not {kv!r}")
            env[k] = v
        vm = VM(memory_mb=a.memory, cpus=a.cpus, rw_dirs=a.rw, cwd=a.cwd, env=env, fs=a.fs,
                pvh=not a.no_pvh, install=not a.no_install, verbose=a.verbose,
                echo=lambda line: print(line, flush=True))
        # one string is a shell command line; several words are an argv
        code, _ = vm.run(a.kernel, cmd[0] if len(cmd) == 1 else cmd, timeout=a.timeout)
        return code
    except VMError as e:
        print(f"bpfkit.testing.vm: {e}", file=sys.stderr)
        return EXIT_NO_STATUS


if __name__ == "__main__":
    sys.exit(main())
