"""/proc/kallsyms, read and parsed in one place: kernel symbol -> address (``.kconfig``
``__ksym`` values, feature checks), and the sorted table of text symbols that stack
symbolization and kprobe target look-ups search."""

from __future__ import annotations

import bisect
import os
import threading
from dataclasses import dataclass
from functools import lru_cache

from ..errors import BpfkitError

__all__ = ["kallsyms", "kallsyms_lookup", "has_symbol", "parse_kallsyms", "Symbol",
           "KernelSymbols", "kernel_symbols", "text_symbols", "read_kallsyms"]

KALLSYMS = "/proc/kallsyms"


@lru_cache(maxsize=1)
def kallsyms() -> dict[str, int]:
    """Kernel symbol -> address (first definition wins); {} when unreadable.  Addresses are
    0 without privileges (kptr_restrict), names are still listed."""
    out: dict[str, int] = {}
    for addr, name, _mod in read_kallsyms():
        out.setdefault(name, addr)
    return out


def read_kallsyms(text_only: bool = False) -> list[tuple[int, str, str]]:
    """Every ``(address, name, module)`` of /proc/kallsyms now (hidden addresses read 0);
    [] when unreadable."""
    try:
        with open(KALLSYMS, "rb") as f:
            data = f.read()
    except OSError:
        return []
    return parse_kallsyms(data, text_only=text_only, keep_hidden=True)


def kallsyms_lookup(name: str) -> int | None:
    """Address of a kernel symbol; None when absent or hidden (address 0)."""
    addr = kallsyms().get(name)
    return addr if addr else None


def has_symbol(name: str) -> bool:
    """Whether the kernel has a symbol of that name (also without privileges)."""
    return name in kallsyms()




@dataclass(frozen=True)
class Symbol:
    """Where an address falls: ``name`` + ``offset`` (in ``module`` or ``path``)."""

    name: str
    address: int
    offset: int
    module: str = ""

    def __str__(self) -> str:
        s = f"{self.name}+{self.offset:#x}" if self.offset else self.name
        return f"{s} [{self.module}]" if self.module else s


def parse_kallsyms(data: bytes, text_only: bool = True, keep_hidden: bool = False
                   ) -> list[tuple[int, str, str]]:
    """``(address, name, module)`` of each kallsyms line (lines that are not symbols are
    skipped: the file is the kernel's, but it is also read from paths users give).
    ``keep_hidden`` keeps symbols whose address reads 0 (no privileges: kptr_restrict)."""
    entries: list[tuple[int, str, str]] = []
    for line in data.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        typ = parts[1]
        if text_only and typ not in (b"t", b"T", b"w", b"W"):
            continue
        try:
            a = int(parts[0], 16)
        except ValueError:
            continue
        if a == 0 and not keep_hidden:
            continue
        mod = parts[3].decode(errors="replace").strip("[]") if len(parts) > 3 else ""
        entries.append((a, parts[2].decode(errors="replace"), mod))
    return entries


class KernelSymbols:
    """/proc/kallsyms as sorted arrays; ``resolve(addr)`` is a bisect."""

    def __init__(self, path: str = KALLSYMS, text_only: bool = True) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BpfkitError(f"cannot read {path}: {e.strerror}") from None
        entries = parse_kallsyms(data, text_only)
        if not entries and os.geteuid() != 0:
            raise BpfkitError("kallsyms shows no addresses: run as root (kptr_restrict)")
        entries.sort()
        self._addrs = [e[0] for e in entries]
        self._names = [e[1] for e in entries]
        self._mods = [e[2] for e in entries]
        self._by_name: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._addrs)

    def resolve(self, addr: int) -> Symbol | None:
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        base = self._addrs[i]
        return Symbol(self._names[i], base, addr - base, self._mods[i])

    def address(self, name: str) -> int | None:
        """Address of a kernel symbol by name (first one when duplicated)."""
        if self._by_name is None:
            d: dict[str, int] = {}
            for a, n in zip(self._addrs, self._names, strict=True):
                d.setdefault(n, a)
            self._by_name = d
        return self._by_name.get(name)


_ksyms_lock = threading.Lock()


_ksyms: KernelSymbols | None = None


def kernel_symbols() -> KernelSymbols:
    """The process-wide cached kallsyms table."""
    global _ksyms
    with _ksyms_lock:
        if _ksyms is None:
            _ksyms = KernelSymbols()
        return _ksyms


def text_symbols() -> list[str]:
    """Names of vmlinux's text (function) symbols, also without privileges."""
    return [name for _a, name, mod in read_kallsyms(text_only=True) if not mod]
