"""Turning instruction addresses from stack traces into function names.

Kernel addresses resolve through /proc/kallsyms (read once, sorted, bisected).  User
addresses resolve through the process's /proc/PID/maps: the mapping gives the file and
its file offset, the ELF program headers turn that into the address the symbol tables
use (the load bias), and ``.symtab``/``.dynsym`` give the function.  Everything parsed is
cached, because a profiler symbolizes the same few thousand addresses over and over.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._consts import MapType
from .errors import BpfkitError, ElfError
from .host.kallsyms import KernelSymbols, Symbol, kernel_symbols

__all__ = [
    "Symbol", "KernelSymbols", "ElfSymbols", "ProcessSymbols", "StackTraceMap", "ksym",
    "ksymname", "kaddr", "usym", "demangle", "folded", "format_stack",
]



# --------------------------------------------------------------------------- kernel






def ksym(addr: int, show_offset: bool = True, show_module: bool = False) -> str:
    """``name+0x1a`` for a kernel address (``[unknown]`` if none), like BCC's ``ksym``."""
    s = kernel_symbols().resolve(addr)
    if s is None:
        return "[unknown]"
    out = str(Symbol(s.name, s.address, s.offset if show_offset else 0))
    return f"{out} [{s.module}]" if show_module and s.module else out


def ksymname(addr: int) -> str:
    s = kernel_symbols().resolve(addr)
    return s.name if s else "[unknown]"


def kaddr(name: str) -> int | None:
    """Kernel address of a symbol name (None if absent)."""
    return kernel_symbols().address(name)


# --------------------------------------------------------------------------- ELF


class ElfSymbols:
    """Function symbols of one ELF file keyed by the addresses its symbol tables use."""

    def __init__(self, path: str) -> None:
        from .elf import PT_LOAD, STT_FUNC, STT_GNU_IFUNC, ElfFile
        self.path = path
        with ElfFile.open(path) as elf:
            syms: dict[int, tuple[int, str]] = {}
            tables = []
            try:
                tables.append(elf.symbols())
            except ElfError:
                pass
            try:
                tables.append(elf.dynamic_symbols())
            except ElfError:
                pass
            for tab in tables:
                for s in tab:
                    if s.type not in (STT_FUNC, STT_GNU_IFUNC) or not s.defined or not s.value:
                        continue
                    old = syms.get(s.value)
                    if old is None or (not old[0] and s.size):
                        syms[s.value] = (s.size, s.name)
            self._loads = [(seg.offset, seg.vaddr, seg.filesz) for seg in elf.segments
                           if seg.type == PT_LOAD]
        items = sorted(syms.items())
        self._addrs = [a for a, _ in items]
        self._sizes = [v[0] for _, v in items]
        self._names = [v[1] for _, v in items]

    def file_offset_to_vaddr(self, off: int) -> int | None:
        for foff, vaddr, filesz in self._loads:
            if foff <= off < foff + filesz:
                return off - foff + vaddr
        return None

    def resolve(self, vaddr: int) -> Symbol | None:
        i = bisect.bisect_right(self._addrs, vaddr) - 1
        if i < 0:
            return None
        base, size = self._addrs[i], self._sizes[i]
        if size and vaddr >= base + size:
            return None
        return Symbol(self._names[i], base, vaddr - base, os.path.basename(self.path))

    def address(self, name: str) -> int | None:
        try:
            return self._addrs[self._names.index(name)]
        except ValueError:
            return None


@lru_cache(maxsize=256)
def _elf_symbols(path: str, ino: int, mtime: int) -> ElfSymbols:
    return ElfSymbols(path)


def elf_symbols(path: str) -> ElfSymbols:
    """Cached symbols of a file (re-read when it changes)."""
    st = os.stat(path)
    return _elf_symbols(path, st.st_ino, int(st.st_mtime_ns))


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    offset: int
    path: str
    exec_: bool


class ProcessSymbols:
    """User-space symbols of one process, from /proc/PID/maps and its ELF files."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.refresh()

    def refresh(self) -> None:
        maps: list[_Mapping] = []
        try:
            with open(f"/proc/{self.pid}/maps") as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) < 5:
                        continue
                    lo, hi = parts[0].split("-")
                    path = parts[5].strip() if len(parts) > 5 else ""
                    maps.append(_Mapping(int(lo, 16), int(hi, 16), int(parts[2], 16), path,
                                         "x" in parts[1]))
        except FileNotFoundError:
            raise BpfkitError(f"no process {self.pid}") from None
        except (OSError, ValueError) as e:
            raise BpfkitError(f"cannot read /proc/{self.pid}/maps: {e}") from None
        self._maps = maps
        self._starts = [m.start for m in maps]

    def mapping(self, addr: int) -> _Mapping | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._maps[i].end:
            return self._maps[i]
        return None

    def _file(self, m: _Mapping) -> str | None:
        p = m.path
        if not p or p.startswith("[") or p.startswith("anon_inode:"):
            return None
        # Through the process's root (containers) and map_files (deleted files).
        for cand in (f"/proc/{self.pid}/root{p.removesuffix(' (deleted)')}",
                     f"/proc/{self.pid}/map_files/{m.start:x}-{m.end:x}"):
            if os.path.exists(cand):
                return cand
        return None

    def resolve(self, addr: int) -> Symbol | None:
        """Symbol for a user address: ``module`` is the file's base name."""
        m = self.mapping(addr)
        if m is None:
            return None
        path = self._file(m)
        if path is None:
            return Symbol(m.path or "[anon]", m.start, addr - m.start, m.path)
        try:
            es = elf_symbols(path)
        except (OSError, ElfError):
            return None
        vaddr = es.file_offset_to_vaddr(addr - m.start + m.offset)
        if vaddr is None:
            return None
        s = es.resolve(vaddr)
        if s is None:
            return None
        return Symbol(s.name, addr - s.offset, s.offset, os.path.basename(m.path))

    def address(self, path_suffix: str, name: str) -> int | None:
        """Run-time address of function ``name`` in the mapped file ending with
        ``path_suffix`` (the inverse of ``resolve``)."""
        for m in self._maps:
            if not m.path.endswith(path_suffix):
                continue
            path = self._file(m)
            if path is None:
                continue
            es = elf_symbols(path)
            va = es.address(name)
            if va is None:
                return None
            for foff, vaddr, filesz in es._loads:
                if vaddr <= va < vaddr + filesz:
                    fo = va - vaddr + foff
                    for mm in self._maps:
                        if mm.path == m.path and mm.offset <= fo < mm.offset + (mm.end - mm.start):
                            return mm.start + fo - mm.offset
            return None
        return None


@lru_cache(maxsize=64)
def _process(pid: int) -> ProcessSymbols:
    return ProcessSymbols(pid)


def usym(addr: int, pid: int, show_offset: bool = True, show_module: bool = False,
         demangled: bool = True) -> str:
    """``name+0x10`` for a user address of process ``pid`` (``[unknown]`` if none)."""
    try:
        s = _process(pid).resolve(addr)
        if s is None:
            _process.cache_clear()  # new mappings since we looked (dlopen): look again
            s = _process(pid).resolve(addr)
    except BpfkitError:
        return "[unknown]"
    if s is None:
        return "[unknown]"
    name = demangle(s.name) if demangled else s.name
    out = f"{name}+{s.offset:#x}" if show_offset and s.offset else name
    return f"{out} [{s.module}]" if show_module and s.module else out


# --------------------------------------------------------------------------- demangling


_demangle_cache: dict[str, str] = {}


def demangle(name: str) -> str:
    """C++/Rust-legacy names through ``c++filt`` when installed (else unchanged)."""
    if not name.startswith("_Z"):
        return name
    got = _demangle_cache.get(name)
    if got is None:
        got = demangle_many([name])[0]
    return got


def demangle_many(names: Sequence[str]) -> list[str]:
    """Demangle many names with one ``c++filt`` run."""
    todo = [n for n in dict.fromkeys(names) if n.startswith("_Z") and n not in _demangle_cache]
    if todo:
        tool = shutil.which("c++filt")
        if tool is None:
            for n in todo:
                _demangle_cache[n] = n
        else:
            try:
                r = subprocess.run([tool], input="\n".join(todo) + "\n", capture_output=True,
                                   text=True, timeout=10, check=False)
                outs = r.stdout.splitlines()
            except (OSError, subprocess.TimeoutExpired):
                outs = []
            if len(outs) != len(todo):
                outs = todo
            _demangle_cache.update(zip(todo, outs, strict=True))
    return [_demangle_cache.get(n, n) for n in names]


# --------------------------------------------------------------------------- stacks


class StackTraceMap:
    """Reads a BPF_MAP_TYPE_STACK_TRACE map: stack id -> list of addresses (leaf first)."""

    def __init__(self, map_: Any) -> None:
        mtype = getattr(map_, "type", MapType.STACK_TRACE)
        if mtype != MapType.STACK_TRACE:
            raise BpfkitError(f"map {getattr(map_, 'name', '?')!r} is a {mtype!r}, "
                              "not a STACK_TRACE map")
        self.map = map_
        self.depth = int(map_.value_size) // 8

    def stack(self, stack_id: int) -> list[int]:
        """Addresses of a stack (empty when the id is negative/unknown, e.g. -EFAULT)."""
        if stack_id < 0:
            return []
        raw = self.map.lookup(ctypes.c_uint32(stack_id & 0xFFFFFFFF))
        if raw is None:
            return []
        if not isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw)
        vals = (ctypes.c_uint64 * self.depth).from_buffer_copy(raw[: self.depth * 8])
        out = []
        for v in vals:
            if not v:
                break
            out.append(int(v))
        return out

    def kernel_stack(self, stack_id: int, show_offset: bool = False) -> list[str]:
        return [ksym(a, show_offset) for a in self.stack(stack_id)]

    def user_stack(self, stack_id: int, pid: int, show_offset: bool = False) -> list[str]:
        return [usym(a, pid, show_offset) for a in self.stack(stack_id)]

    def ids(self) -> list[int]:
        return [int.from_bytes(k, "little") if isinstance(k, (bytes, bytearray)) else int(k)
                for k in self.map.keys()]

    def clear(self) -> None:
        for i in self.ids():
            self.map.delete(ctypes.c_uint32(i))


def format_stack(frames: Iterable[str], indent: str = "    ") -> str:
    return "\n".join(indent + f for f in frames)


def folded(stacks_with_counts: Iterable[tuple[Sequence[str], int]] | Mapping[Any, int], *,
           leaf_first: bool = True, sep: str = ";") -> str:
    """Brendan Gregg's folded format (``root;...;leaf count`` per line) for flamegraph.pl.

    Stacks read from a STACK_TRACE map are leaf first, hence the default; identical
    stacks are merged and lines sorted so the output is stable.
    """
    items = stacks_with_counts.items() if isinstance(stacks_with_counts, Mapping) \
        else stacks_with_counts
    merged: dict[str, int] = {}
    for frames, count in items:
        fs = list(frames)
        if leaf_first:
            fs.reverse()
        key = sep.join(f.replace(sep, ":") or "[unknown]" for f in fs)
        merged[key] = merged.get(key, 0) + int(count)
    return "\n".join(f"{k} {v}" for k, v in sorted(merged.items()))
