"""BTF from files: the running kernel's (``/sys/kernel/btf/vmlinux`` and modules' split
BTF, read once per process and shared) and raw or ELF files given by path.  The I/O half of
:class:`~bpfkit.btf.parse.Spec`, kept apart from parsing as cilium's btf/kernel.go is."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..elf import ElfFile
from ..errors import BTFError
from ..inputfile import read_regular

if TYPE_CHECKING:
    from .parse import Spec

KERNEL_BTF_PATH = "/sys/kernel/btf/vmlinux"
# Raw BTF is megabytes; an ELF file carrying .BTF (a vmlinux with DWARF) can be far more.
MAX_BTF_FILE = 4 << 30


class KernelBTF:
    """``Spec.kernel``/``kernel_module``/``load_file``: mixed into
    :class:`~bpfkit.btf.parse.Spec`."""

    @classmethod
    def load_file(cls, path: str | os.PathLike[str], base: Spec | None = None) -> Spec:
        """Load a raw BTF file (btfhub style, /sys/kernel/btf/*) or an ELF file's ``.BTF``."""
        data = read_regular(path, "BTF file", MAX_BTF_FILE, BTFError)
        if data[:4] == b"\x7fELF":
            sec = elf_section(data, ".BTF")
            if sec is None:
                raise BTFError(f"{os.fspath(path)}: ELF file has no .BTF section")
            return cls.from_bytes(sec, base)
        return cls.from_bytes(data, base, lazy=len(data) > (1 << 20))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, base: Spec | None = None, *,
                   lazy: bool = False) -> Spec:
        raise NotImplementedError  # Spec's parser

    _kernel_lock = threading.Lock()
    _kernel_cache: dict[str, Spec] = {}

    @classmethod
    def kernel(cls) -> Spec:
        """The running kernel's BTF, indexed lazily once per process and shared."""
        with cls._kernel_lock:
            spec = cls._kernel_cache.get("vmlinux")
            if spec is None:
                spec = cls._read_kernel_file(KERNEL_BTF_PATH, None)
                cls._kernel_cache["vmlinux"] = spec
            return spec

    @classmethod
    def kernel_module(cls, module: str) -> Spec:
        """A kernel module's split BTF (``/sys/kernel/btf/<module>``) on top of :meth:`kernel`."""
        base = cls.kernel()
        if module == "vmlinux":
            return base
        if "/" in module or module.startswith("."):
            raise BTFError(f"bad module name {module!r}")
        with cls._kernel_lock:
            spec = cls._kernel_cache.get(module)
            if spec is None:
                spec = cls._read_kernel_file(f"/sys/kernel/btf/{module}", base)
                cls._kernel_cache[module] = spec
            return spec

    @classmethod
    def _read_kernel_file(cls, path: str, base: Spec | None) -> Spec:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BTFError(f"kernel BTF not available: {path} is missing (the kernel needs "
                           "CONFIG_DEBUG_INFO_BTF=y, or give a BTF file from btfhub)")
        except OSError as e:
            raise BTFError(f"cannot read kernel BTF {path}: {e.strerror}")
        return cls.from_bytes(data, base, lazy=True)


def elf_section(data: bytes, name: str) -> bytes | None:
    """Contents of ELF section ``name`` of an object in memory (None if absent)."""
    sec = ElfFile(data).section(name)
    return None if sec is None else bytes(sec.data())
