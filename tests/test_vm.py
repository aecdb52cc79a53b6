"""bpfkit.testing.vm: the pure parts (cpio, bzImage payload, PVH note, module order) on
made-up inputs, and one real boot when QEMU and a Debian kernel are installed."""

from __future__ import annotations

import gzip
import lzma
import os
import struct
from pathlib import Path

import pytest

from bpfkit.testing import vm


def _read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """A tiny newc reader, independent of the writer under test."""
    out: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos:pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out[name] = (mode, body)


def test_cpio_newc_layout() -> None:
    c = vm._Cpio()
    c.dir("bin")
    c.file("bin/x", b"abc", 0o755)
    c.file("empty", b"")
    c.file("odd-name-len", b"12345")
    files = _read_cpio(c.finish())
    assert files["bin"][0] == 0o040755
    assert files["bin/x"] == (0o100755, b"abc")
    assert files["empty"] == (0o100644, b"")
    assert files["odd-name-len"][1] == b"12345"


def _fake_vmlinux(pvh: bool = True) -> bytes:
    """An ELF64 header, one PT_NOTE program header and a Xen note (type 18 if pvh)."""
    note = struct.pack("<III", 4, 4, 18 if pvh else 7) + b"Xen\0" + struct.pack("<I", 0x1000000)
    ehdr = bytearray(64)
    ehdr[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", ehdr, 0x20, 64)          # e_phoff
    struct.pack_into("<HH", ehdr, 0x36, 56, 1)      # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(ehdr) + phdr + note


def _fake_bzimage(payload: bytes, setup_sects: int = 1) -> bytes:
    img = bytearray((setup_sects + 1) * 512)
    img[0x1F1] = setup_sects
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x20F)
    struct.pack_into("<II", img, 0x248, 16, len(payload))
    return bytes(img) + b"\0" * 16 + payload + b"trailing junk"


@pytest.mark.parametrize("compress", [gzip.compress,
                                      lambda b: lzma.compress(b, lzma.FORMAT_XZ)],
                         ids=["gzip", "xz"])
def test_extract_vmlinux(tmp_path: Path, compress) -> None:  # type: ignore[no-untyped-def]
    elf = _fake_vmlinux()
    src = tmp_path / "vmlinuz"
    src.write_bytes(_fake_bzimage(compress(elf)))
    assert vm.extract_vmlinux(src, tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == elf


def test_extract_vmlinux_refuses_non_pvh_and_garbage(tmp_path: Path) -> None:
    out = tmp_path / "vmlinux"
    for i, data in enumerate([_fake_bzimage(gzip.compress(_fake_vmlinux(pvh=False))),
                              b"", b"MZ" + os.urandom(4000),
                              _fake_bzimage(b"\x1f\x8b\x08" + os.urandom(100)),
                              _fake_bzimage(gzip.compress(b"\x7fELF\x02" + b"\xff" * 80))]):
        src = tmp_path / f"img{i}"
        src.write_bytes(data)
        assert vm.extract_vmlinux(src, out) is False
        assert not out.exists()


def test_module_order(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/net/9p/9pnet.ko.xz:\n"
        "kernel/fs/netfs/netfs.ko.xz:\n"
        "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz\n"
        "kernel/drivers/virtio/virtio_ring.ko.xz:\n")
    (tmp_path / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    order = [p.name for p in vm._module_closure(tmp_path, ["virtio_pci", "9p", "9pnet_virtio"])]
    assert order == ["9pnet.ko.xz", "netfs.ko.xz", "9p.ko.xz", "virtio_ring.ko.xz",
                     "9pnet_virtio.ko.xz"]
    with pytest.raises(vm.VMError, match="no module overlay"):
        vm._module_closure(tmp_path, ["overlay"])


def test_console_tail_starts_at_the_panic(tmp_path: Path) -> None:
    log = tmp_path / "console"
    log.write_text("\n".join([f"noise {i}" for i in range(100)]
                             + ["Kernel panic - not syncing: x"] + ["trace"] * 100))
    tail = vm._console_tail(log)
    assert "Kernel panic - not syncing: x" in tail[:5]


KERNEL = vm.DEFAULT_KERNELS[-1]


@pytest.mark.requires_root
def test_boot_runs_command_and_returns_status(tmp_path: Path) -> None:
    missing = vm.missing_packages([KERNEL])
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (scripts/setup-kernels.sh installs them)")
    machine = vm.VM(rw_dirs=[tmp_path], cwd=tmp_path, install=False, env={"GREETING": "hi there"})
    code, out = machine.run(KERNEL, 'echo "$GREETING"; uname -r > out.txt; pwd; exit 7',
                            timeout=120)
    assert code == 7, out
    assert out.splitlines() == ["hi there", str(tmp_path)]
    assert (tmp_path / "out.txt").read_text().strip() == KERNEL
    assert machine.boot_s is not None and machine.boot_s < 60
