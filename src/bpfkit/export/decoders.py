"""Label decoders: turn a piece of a map key into a readable Prometheus label value.

Each decoder takes the value from the previous step (an ``int``, ``str``, ``bytes``,
list of byte values or an enum from BTF) and returns the next one; the last result is
turned into a string.  A decoder may return :data:`SKIP` to drop the whole series (the
``regexp`` decoder does), so a config can keep only the keys it cares about.

Names follow ebpf_exporter where it has one: ``uint``, ``string``, ``ksym``, ``kstack``,
``inet_ip``, ``cgroup``, ``static_map``, ``regexp``, ``syscall``, ``errno``, ``ifname``,
``majorminor``; plus ``int``, ``hex``, ``enum``, ``port``.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from ..errors import BpfkitError

__all__ = ["SKIP", "DecodeError", "DECODERS", "make_decoder", "DecoderContext", "to_label"]


class DecodeError(BpfkitError):
    """A key could not be decoded into a label (counted, the series is dropped)."""


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
"""Returned by a decoder to drop the series."""

Decoder = Callable[[Any], Any]


class DecoderContext:
    """What decoders may need from the loaded object: its maps (kstack) and BTF (enum)."""

    def __init__(self, maps: dict[str, Any] | None = None, btf: Any = None) -> None:
        self.maps = maps or {}
        self.btf = btf


# ----------------------------------------------------------------------------- helpers

def _as_bytes(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, (list, tuple)) and all(isinstance(x, int) and 0 <= x < 256 for x in v):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    raise DecodeError(f"expected bytes, got {type(v).__name__}")


def _as_int(v: Any, byteorder: str = "little", signed: bool = False) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, (bytes, bytearray, list, tuple)):
        return int.from_bytes(_as_bytes(v), byteorder, signed=signed)  # type: ignore[arg-type]
    if isinstance(v, str) and re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", v):
        return int(v, 0)
    raise DecodeError(f"expected an integer, got {type(v).__name__} {v!r}")


def to_label(v: Any) -> str:
    """The final label string of a decoded value."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        name = getattr(v, "name", None)  # an EnumInt from BTF
        return name if isinstance(name, str) and type(v) is not int else str(int(v))
    if isinstance(v, (bytes, bytearray)):
        return str(int.from_bytes(v, "little"))
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ----------------------------------------------------------------------------- decoders

def _uint(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    order = "big" if opts.get("byte_order") in ("big", "network") else "little"

    def dec(v: Any) -> str:
        i = _as_int(v, order)
        return str(i & ((1 << 64) - 1) if i < 0 else i)
    return dec


def _int(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    order = "big" if opts.get("byte_order") in ("big", "network") else "little"
    return lambda v: str(_as_int(v, order, signed=True))


def _hex(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    return lambda v: hex(_as_int(v))


def _string(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    def dec(v: Any) -> str:
        if isinstance(v, str):
            return v.split("\0", 1)[0]
        return _as_bytes(v).split(b"\0", 1)[0].decode("utf-8", "replace")
    return dec


def _enum(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    """Enumerator name: from the value's own BTF enum, or a named enum type in the object."""
    type_name = opts.get("type")
    names: dict[int, str] = {}
    if type_name:
        from ..btf import types as bt
        btf = ctx.btf
        if btf is None:
            raise DecodeError(f"enum decoder: type {type_name!r} needs BTF in the object")
        found = [t for t in btf.types_by_name(str(type_name)) if isinstance(t, bt.EnumBase)]
        if not found:
            raise DecodeError(f"enum decoder: no enum {type_name!r} in the object's BTF")
        names = {v.value: v.name for v in found[0].values}

    def dec(v: Any) -> str:
        n = getattr(v, "name", None)
        if isinstance(n, str) and type(v) is not int:
            return n
        i = _as_int(v)
        return names.get(i, str(i))
    return dec


def _ksym(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    from ..symbolize import kernel_symbols, ksym
    kernel_symbols()  # read /proc/kallsyms now: after dropping privileges it shows zeros
    offset = bool(opts.get("offset", False))
    return lambda v: ksym(_as_int(v), offset)


def _kstack(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    from ..symbolize import StackTraceMap, kernel_symbols
    name = opts.get("map")
    if not name or name not in ctx.maps:
        raise DecodeError(f"kstack decoder: 'map' must name a STACK_TRACE map of the object "
                          f"(maps: {', '.join(sorted(ctx.maps))})")
    kernel_symbols()
    st = StackTraceMap(ctx.maps[name])
    sep = str(opts.get("separator", "\n"))
    offset = bool(opts.get("offset", False))

    def dec(v: Any) -> str:
        sid = _as_int(v, signed=True)
        if sid < 0:
            return "[unknown]"
        if sid >= 1 << 31:
            sid -= 1 << 32
            if sid < 0:
                return "[unknown]"
        return sep.join(st.kernel_stack(sid, offset)) or "[unknown]"
    return dec


def _inet_ip(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    def dec(v: Any) -> str:
        if isinstance(v, int):
            # a __be32 read as a little-endian integer: its bytes are the address
            b = int(v).to_bytes(16 if v >= 1 << 32 else 4, "little")
        else:
            b = _as_bytes(v)
        if len(b) == 4:
            return str(ipaddress.IPv4Address(b))
        if len(b) == 16:
            a = ipaddress.IPv6Address(b)
            return str(a.ipv4_mapped) if a.ipv4_mapped else str(a)
        raise DecodeError(f"inet_ip: {len(b)} bytes is neither IPv4 (4) nor IPv6 (16)")
    return dec


def _port(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    network = str(opts.get("byte_order", "network")) in ("network", "big")

    def dec(v: Any) -> str:
        p = _as_int(v) & 0xFFFF
        return str(int.from_bytes(p.to_bytes(2, "little"), "big") if network else p)
    return dec


class _CgroupPaths:
    """cgroup id -> path: on cgroup2 an id is the inode number of the cgroup's directory."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.scanned = 0.0
        self.root = ""

    def _scan(self) -> None:
        if not self.root:
            try:
                from ..attach.cgroup import cgroup2_mount
                self.root = cgroup2_mount()
            except (BpfkitError, OSError):
                self.root = "/sys/fs/cgroup"
        self.scanned = time.monotonic()
        paths: dict[int, str] = {}
        for dirpath, _dirs, _files in os.walk(self.root):
            try:
                ino = os.stat(dirpath).st_ino
            except OSError:
                continue
            rel = "/" + os.path.relpath(dirpath, self.root).lstrip(".")
            paths[ino] = rel.rstrip("/") or "/"
        if paths:
            self.paths = paths

    def path(self, cgid: int) -> str:
        p = self.paths.get(cgid)
        if p is None and time.monotonic() - self.scanned > 1.0:
            self._scan()
            p = self.paths.get(cgid)
        return p if p is not None else f"unknown_cgroup_id:{cgid}"


_cgroups = _CgroupPaths()


def _cgroup(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    return lambda v: _cgroups.path(_as_int(v))


def _ifname(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    cache: dict[int, str] = {}

    def dec(v: Any) -> str:
        i = _as_int(v)
        if i not in cache:
            try:
                cache[i] = socket.if_indextoname(i)
            except OSError:
                return f"ifindex{i}"  # gone, or in another netns: do not cache
        return cache[i]
    return dec


def _errno_name(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    return lambda v: _errno.errorcode.get(abs(_as_int(v, signed=True)),
                                         f"E{abs(_as_int(v, signed=True))}")


def _syscall(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    from .syscalls import syscall_name
    machine = opts.get("arch")
    return lambda v: syscall_name(_as_int(v), machine)


def _majorminor(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    def dec(v: Any) -> str:
        dev = _as_int(v)
        return f"{dev >> 20}:{dev & 0xFFFFF}"  # the kernel's dev_t (MINORBITS = 20)
    return dec


def _static_map(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    table = {str(k): str(v) for k, v in (opts.get("map") or {}).items()}
    default = opts.get("default")
    drop = bool(opts.get("allow_unknown") is False)

    def dec(v: Any) -> Any:
        key = to_label(v) if not isinstance(v, int) else str(int(v))
        if key in table:
            return table[key]
        if isinstance(v, int) and getattr(v, "name", None) and to_label(v) in table:
            return table[to_label(v)]
        if drop:
            return SKIP
        return str(default) if default is not None else to_label(v)
    return dec


def _regexp(opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    pats = opts.get("regexps") or [opts.get("regexp")]
    regs = [re.compile(str(p)) for p in pats if p is not None]

    def dec(v: Any) -> Any:
        s = to_label(v)
        return s if any(r.search(s) for r in regs) else SKIP
    return dec


DECODERS: dict[str, tuple[Callable[[dict[str, Any], DecoderContext], Decoder], set[str], set[str]]] = {
    # name: (factory, required options, optional options)
    "uint": (_uint, set(), {"byte_order"}),
    "int": (_int, set(), {"byte_order"}),
    "hex": (_hex, set(), set()),
    "string": (_string, set(), set()),
    "enum": (_enum, set(), {"type"}),
    "ksym": (_ksym, set(), {"offset"}),
    "kstack": (_kstack, {"map"}, {"separator", "offset"}),
    "inet_ip": (_inet_ip, set(), set()),
    "port": (_port, set(), {"byte_order"}),
    "cgroup": (_cgroup, set(), set()),
    "ifname": (_ifname, set(), set()),
    "errno": (_errno_name, set(), set()),
    "syscall": (_syscall, set(), {"arch"}),
    "majorminor": (_majorminor, set(), set()),
    "static_map": (_static_map, {"map"}, {"default", "allow_unknown"}),
    "regexp": (_regexp, set(), {"regexp", "regexps"}),
}


def make_decoder(name: str, opts: dict[str, Any], ctx: DecoderContext) -> Decoder:
    """Build one decoder step (the config layer has validated name and options)."""
    factory = DECODERS[name][0]
    return factory(opts, ctx)
