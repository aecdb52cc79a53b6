"""Attaching to user-space functions: uprobes, uretprobes and uprobe.multi links.

A uprobe is placed on (inode, file offset), so the work here is turning "libc's getpid"
or "my binary's main+4" into a path and a file offset: library names resolve through
the dynamic linker's cache (/etc/ld.so.cache) or a process's /proc/PID/maps, symbols
through .symtab then .dynsym, and a symbol's virtual address through the PT_LOAD
segment that maps it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import subprocess
from collections.abc import Sequence
from typing import Any

from .. import syscall as sc
from .._consts import AttachType
from ..elf import ElfFile
from ..errors import ENOTSUPP, AttachError, ElfError, KernelError, MissingFeature, ParseError
from ..link import Link
from . import perf
from .tracing import _track, attach_perf_fd

__all__ = [
    "resolve_binary", "resolve_symbol_offset", "parse_ld_so_cache", "attach_uprobe",
    "attach_uprobe_multi", "uprobe_multi_extra", "uprobe_perf_attr",
]

_LD_CACHE_NEW = b"glibc-ld.so.cache1.1"
_LD_CACHE_OLD = b"ld.so-1.7.0"
_FLAG_ELF_LIBC6 = 0x0003
_ARCH_FLAGS = {"x86_64": 0x0300, "aarch64": 0x0a00, "riscv64": 0x1000, "s390x": 0x0400,
               "ppc64le": 0x0500, "ppc64": 0x0500, "loongarch64": 0x1100}


def parse_ld_so_cache(data: bytes) -> list[tuple[str, str, int]]:
    """Entries ``(soname, path, flags)`` of a glibc ld.so.cache (new format, optionally
    after the old one).  Raises ParseError on malformed input."""
    base = 0
    if data.startswith(_LD_CACHE_OLD):
        if len(data) < 16:
            raise ParseError("ld.so.cache: truncated old-format header")
        (nlibs,) = struct.unpack_from("<I", data, 12)
        base = 16 + nlibs * 12
        base = (base + 7) & ~7
        if data[base:base + len(_LD_CACHE_NEW)] != _LD_CACHE_NEW:
            # old format only: strings follow the entry table
            return _parse_old_cache(data, nlibs)
    if data[base:base + len(_LD_CACHE_NEW)] != _LD_CACHE_NEW:
        raise ParseError("ld.so.cache: unknown format (bad magic)")
    if len(data) < base + 48:
        raise ParseError("ld.so.cache: truncated header")
    nlibs, _len_strings = struct.unpack_from("<II", data, base + 20)
    table = base + 48
    if table + nlibs * 24 > len(data):
        raise ParseError(f"ld.so.cache: {nlibs} entries do not fit in {len(data)} bytes")
    out = []
    for i in range(nlibs):
        flags, key, value, _osv, _hwcap = struct.unpack_from("<iIIIQ", data, table + i * 24)
        out.append((_cstr(data, base + key), _cstr(data, base + value), flags))
    return out


def _parse_old_cache(data: bytes, nlibs: int) -> list[tuple[str, str, int]]:
    strings = 16 + nlibs * 12
    if strings > len(data):
        raise ParseError("ld.so.cache: old-format table overruns the file")
    out = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from("<iII", data, 16 + i * 12)
        out.append((_cstr(data, strings + key), _cstr(data, strings + value), flags))
    return out


_PATH_MAX = 4096


def _cstr(data: bytes, off: int) -> str:
    if not 0 <= off < len(data):
        raise ParseError(f"ld.so.cache: string offset {off:#x} out of range")
    end = data.find(b"\0", off, off + _PATH_MAX)  # bounded: n entries x a long string
    if end < 0:
        raise ParseError(f"ld.so.cache: string at {off:#x} has no NUL within {_PATH_MAX} "
                         "bytes")
    return data[off:end].decode(errors="surrogateescape")


def _lib_matches(soname: str, lib: str) -> bool:
    """``"c"``, ``"libc"``, ``"libc.so"`` and ``"libc.so.6"`` all name libc.so.6."""
    if soname == lib:
        return True
    stem = lib if lib.startswith("lib") else f"lib{lib}"
    if not stem.endswith(".so") and ".so." not in stem:
        stem += ".so"
    return soname == stem or soname.startswith(stem + ".")


def _ld_cache_lookup(lib: str) -> str | None:
    """Path of ``lib`` for this machine's ABI from the dynamic linker's cache."""
    want_arch = _ARCH_FLAGS.get(os.uname().machine, 0)
    try:
        with open("/etc/ld.so.cache", "rb") as f:
            entries = parse_ld_so_cache(f.read())
    except (OSError, ParseError):
        entries = _ldconfig_p()
    fallback: str | None = None
    for soname, path, flags in entries:
        if not _lib_matches(soname, lib) or not os.path.exists(path):
            continue
        if (flags & 0xFF00) == want_arch:
            return path
        if fallback is None and (flags & 0xFF00) == 0:
            fallback = path  # no ABI tag (e.g. i386 on x86_64 would have one)
    return fallback


def _ldconfig_p() -> list[tuple[str, str, int]]:
    """Fallback: the same entries from ``ldconfig -p`` output."""
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    entries = []
    for line in out.splitlines()[1:]:
        if "=>" not in line:
            continue
        left, path = line.rsplit("=>", 1)
        soname = left.strip().split(" ", 1)[0]
        flags = _ARCH_FLAGS.get(os.uname().machine, 0) if "x86-64" in left or "64" in left \
            else 0
        entries.append((soname, path.strip(), flags | _FLAG_ELF_LIBC6))
    return entries


def _maps_lookup(pid: int, lib: str) -> str | None:
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if path.startswith("/") and _lib_matches(os.path.basename(path), lib):
                        return path
    except OSError:
        pass
    return None


def resolve_binary(binary: str, pid: int = -1) -> str:
    """Absolute path of ``binary``: a path, a library name (``"c"``, ``"libc.so.6"``)
    mapped by ``pid`` or known to the dynamic linker, or a program on $PATH."""
    if "/" in binary:
        path = os.path.abspath(binary)
        if pid > 0 and not os.path.exists(path):
            path = f"/proc/{pid}/root{path}"
        if not os.path.exists(path):
            raise AttachError(f"uprobe target {binary!r} does not exist")
        return path
    if pid > 0:
        p = _maps_lookup(pid, binary)
        if p is not None:
            return p
    if binary.startswith("lib") or ".so" in binary or len(binary) <= 12:
        p = _ld_cache_lookup(binary)
        if p is not None:
            return p
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        cand = os.path.join(d, binary)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise AttachError(f"cannot find {binary!r}: not a path, not a library in "
                      "/etc/ld.so.cache" + (f" or /proc/{pid}/maps" if pid > 0 else "")
                      + ", not on $PATH")


def resolve_symbol_offset(path: str, symbol: str) -> int:
    """File offset of ``symbol`` (``name`` or ``name+off``) in ELF ``path``."""
    name, extra = symbol, 0
    if "+" in symbol:
        name, _, off = symbol.rpartition("+")
        try:
            extra = int(off, 0)
        except ValueError:
            raise AttachError(f"bad symbol offset in {symbol!r}") from None
    with ElfFile.open(path) as elf:
        sym = elf.find_symbol(name)
        if sym is None or not sym.defined:
            raise AttachError(f"symbol {name!r} not found in {path}"
                              + (" (only an undefined reference)" if sym is not None else ""))
        if sym.value == 0:
            raise AttachError(f"symbol {name!r} in {path} has no address")
        try:
            return elf.vaddr_to_offset(sym.value) + extra
        except ElfError as e:
            raise AttachError(f"symbol {name!r}: {e}") from None


def uprobe_perf_attr(pmu: int, path_ptr: int, offset: int, *, retprobe: bool = False,
                     retbit: int | None = 0, ref_ctr_offset: int = 0) -> perf.PerfEventAttr:
    """Attr for the uprobe PMU: config1 = path, config2 = offset, ref_ctr in config[63:32]."""
    config = (1 << retbit) if (retprobe and retbit is not None) else 0
    config |= (ref_ctr_offset & 0xFFFF_FFFF) << 32
    return perf.perf_event_attr(pmu, config, config1=path_ptr, config2=offset)


def attach_uprobe(prog: Any, binary: str, symbol: str | None = None, offset: int = 0, *,
                  address: int | None = None, retprobe: bool = False, pid: int = -1,
                  cookie: int = 0, ref_ctr_offset: int = 0, use_pmu: bool | None = None,
                  use_link: bool | None = None) -> Link:
    """Attach a KPROBE-type program to a user function.

    ``symbol`` (optionally ``"name+off"``) plus ``offset``, or ``address`` (a virtual
    address in ``binary``), or just ``offset`` (a file offset).  ``pid`` limits it to
    one process.  The uprobe PMU is used first, tracefs ``uprobe_events`` otherwise.
    """
    path = resolve_binary(binary, pid)
    if symbol is not None:
        off = resolve_symbol_offset(path, symbol) + offset
    elif address is not None:
        with ElfFile.open(path) as elf:
            try:
                off = elf.vaddr_to_offset(address) + offset
            except ElfError as e:
                raise AttachError(str(e)) from None
    else:
        off = offset
    what = f"{'uretprobe' if retprobe else 'uprobe'}/{path}:" + \
        (symbol if symbol is not None else f"{off:#x}")
    if pid >= 0:
        what += f" (pid {pid})"
    pcpu = (pid if pid >= 0 else -1), (0 if pid < 0 else -1)
    pmu = perf.pmu_type("uprobe")
    if pmu is not None and use_pmu is not False:
        pbuf = ctypes.create_string_buffer(path.encode())
        attr = uprobe_perf_attr(pmu, ctypes.addressof(pbuf), off, retprobe=retprobe,
                                retbit=perf.pmu_retprobe_bit("uprobe"),
                                ref_ctr_offset=ref_ctr_offset)
        try:
            pfd = perf.perf_event_open(attr, pcpu[0], pcpu[1], -1, what=what)
        except KernelError:
            if use_pmu:
                raise
        else:
            return attach_perf_fd(prog, pfd, name=what, cookie=cookie, use_link=use_link)
    target = f"{path}:0x{off:x}" + (f"(0x{ref_ctr_offset:x})" if ref_ctr_offset else "")
    try:
        ev = perf.add_probe_event("uprobe_events", "r" if retprobe else "p", target,
                                  group="uprobes")
    except KernelError as e:
        if e.errno == errno.ENOENT and pmu is None:
            raise MissingFeature("uprobes are not available: this kernel was built without "
                                 "CONFIG_UPROBES", obj=what, command="attach") from None
        raise
    try:
        pfd = perf.perf_event_open(perf.perf_event_attr(perf.PERF_TYPE_TRACEPOINT,
                                                        ev.tracepoint_id),
                                   pcpu[0], pcpu[1], -1, what=what)
    except BaseException:
        ev.remove()
        raise
    return attach_perf_fd(prog, pfd, name=what, cookie=cookie, event=ev, use_link=use_link)


def uprobe_multi_extra(path: int, offsets: int, ref_ctr_offsets: int, cookies: int, cnt: int,
                       flags: int, pid: int) -> bytes:
    """LINK_CREATE union for uprobe.multi: ``{u64 path, offsets, ref_ctr_offsets,
    cookies; u32 cnt, flags, pid}``."""
    return struct.pack("<QQQQIII", path, offsets, ref_ctr_offsets, cookies, cnt, flags,
                       pid & 0xFFFF_FFFF)


def attach_uprobe_multi(prog: Any, binary: str, symbols: Sequence[str] | None = None, *,
                        offsets: Sequence[int] | None = None, retprobe: bool = False,
                        pid: int = -1, cookies: Sequence[int] | None = None,
                        ref_ctr_offsets: Sequence[int] | None = None) -> Link:
    """One BPF_TRACE_UPROBE_MULTI link over many locations of one binary.

    The program must be loaded with ``expected_attach_type=TRACE_UPROBE_MULTI``.
    """
    path = resolve_binary(binary, pid)
    if (symbols is None) == (offsets is None):
        raise AttachError("attach_uprobe_multi: give symbols or offsets")
    if symbols is not None:
        offs = [resolve_symbol_offset(path, s) for s in symbols]
    else:
        assert offsets is not None
        offs = list(offsets)
    if not offs:
        raise AttachError("attach_uprobe_multi: no locations")
    n = len(offs)
    what = f"{'uretprobe' if retprobe else 'uprobe'}.multi/{path} ({n} locations)"
    pbuf = ctypes.create_string_buffer(path.encode())
    oarr = (ctypes.c_uint64 * n)(*offs)
    carr = rarr = None
    if cookies is not None:
        if len(cookies) != n:
            raise AttachError(f"{what}: {len(cookies)} cookies for {n} locations")
        carr = (ctypes.c_uint64 * n)(*cookies)
    if ref_ctr_offsets is not None:
        if len(ref_ctr_offsets) != n:
            raise AttachError(f"{what}: {len(ref_ctr_offsets)} ref_ctr offsets for {n} locations")
        rarr = (ctypes.c_uint64 * n)(*ref_ctr_offsets)
    extra = uprobe_multi_extra(ctypes.addressof(pbuf), ctypes.addressof(oarr), sc.addr(rarr),
                               sc.addr(carr), n, 1 if retprobe else 0, pid if pid > 0 else 0)
    try:
        at = (AttachType.TRACE_UPROBE_SESSION
              if int(prog.expected_attach_type) == AttachType.TRACE_UPROBE_SESSION
              else AttachType.TRACE_UPROBE_MULTI)  # uprobe.session shares the multi link
        fd = sc.link_create(prog.fd, 0, at, extra=extra, obj=what)
    except KernelError as e:
        if e.errno in (errno.EOPNOTSUPP, ENOTSUPP):
            raise MissingFeature("uprobe.multi links are not available (Linux 6.6+ with "
                                 "CONFIG_UPROBES)", obj=what, command="attach") from None
        raise
    return _track(prog, Link(fd, what, program=prog, hook=what))
