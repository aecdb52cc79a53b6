"""USDT (SystemTap SDT) probes: parse ``.note.stapsdt`` and attach the libbpf way.

A USDT probe is a ``nop`` in the traced binary plus a note giving its address, an
optional semaphore (a counter the binary checks before computing expensive
arguments) and an argument spec such as ``"-4@%edi 8@-8(%rbp)"``.  We attach a uprobe
to each location, let the kernel bump the semaphore (``ref_ctr_offset``), and record
argument specs in the ``__bpf_usdt_specs`` / ``__bpf_usdt_ip_to_spec_id`` maps in the
layout of libbpf's ``usdt.bpf.h``, so ``BPF_USDT()`` / ``bpf_usdt_arg()`` programs work.
"""

from __future__ import annotations

import os
import re
import struct
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._consts import AttachType
from ..elf import ElfFile
from ..errors import AttachError, ElfError, ParseError
from ..link import Link
from .uprobe import attach_uprobe, attach_uprobe_multi, resolve_binary

__all__ = [
    "UsdtArg", "UsdtNote", "UsdtLink", "parse_usdt_notes", "parse_arg_spec",
    "parse_usdt_args", "find_usdt", "encode_spec", "attach_usdt", "ARG_CONST", "ARG_REG",
    "ARG_REG_DEREF", "MAX_ARGS", "SPEC_SIZE", "X86_64_PT_REGS",
]

NT_STAPSDT = 3
ARG_CONST, ARG_REG, ARG_REG_DEREF = 0, 1, 2
MAX_ARGS = 12
ARG_SPEC = struct.Struct("<QIh?b")  # val_off, arg_type, reg_off, arg_signed, arg_bitshift
SPEC_SIZE = 208  # 12 * 16 + u64 usdt_cookie + s16 arg_cnt, padded to 8

# offsetof(struct pt_regs, reg) on x86_64
X86_64_PT_REGS = {"r15": 0, "r14": 8, "r13": 16, "r12": 24, "rbp": 32, "rbx": 40, "r11": 48,
                  "r10": 56, "r9": 64, "r8": 72, "rax": 80, "rcx": 88, "rdx": 96, "rsi": 104,
                  "rdi": 112, "rip": 128, "rsp": 152}
_X86_ALIASES = {
    "rax": ("rax", "eax", "ax", "al", "ah"), "rbx": ("rbx", "ebx", "bx", "bl", "bh"),
    "rcx": ("rcx", "ecx", "cx", "cl", "ch"), "rdx": ("rdx", "edx", "dx", "dl", "dh"),
    "rsi": ("rsi", "esi", "si", "sil"), "rdi": ("rdi", "edi", "di", "dil"),
    "rbp": ("rbp", "ebp", "bp", "bpl"), "rsp": ("rsp", "esp", "sp", "spl"),
    "rip": ("rip", "eip", "ip"),
}
_REG_OFFSETS: dict[str, int] = {}
for _full, _names in _X86_ALIASES.items():
    for _n in _names:
        _REG_OFFSETS[_n] = X86_64_PT_REGS[_full]
for _i in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _REG_OFFSETS[f"r{_i}{_suffix}"] = X86_64_PT_REGS[f"r{_i}"]


@dataclass(frozen=True)
class UsdtArg:
    """One argument location: a constant, a register, or memory at register + offset."""

    size: int  # bytes, 1/2/4/8
    signed: bool
    kind: int  # ARG_CONST / ARG_REG / ARG_REG_DEREF
    value: int = 0  # the constant, or the memory offset
    reg: str = ""
    reg_off: int = 0

    @property
    def bitshift(self) -> int:
        return 64 - self.size * 8


@dataclass(frozen=True)
class UsdtNote:
    """One ``.note.stapsdt`` entry."""

    provider: str
    name: str
    pc: int
    base: int
    semaphore: int
    args_spec: str
    args: tuple[UsdtArg, ...] = field(default=())


_ARG_RE = re.compile(r"^(-?\d+)@(.+)$")
_MEM_RE = re.compile(r"^(-?(?:0x[0-9a-fA-F]+|\d+))?\(%(\w+)\)$")


def parse_arg_spec(spec: str) -> UsdtArg:
    """Parse one x86_64 argument spec: ``-4@%edi``, ``8@-8(%rbp)``, ``8@(%rax)``, ``4@$5``."""
    m = _ARG_RE.match(spec.strip())
    if not m:
        raise ParseError(f"USDT argument {spec!r}: expected SIZE@LOCATION")
    size_s, loc = int(m.group(1)), m.group(2)
    size, signed = abs(size_s), size_s < 0
    if size not in (1, 2, 4, 8):
        raise ParseError(f"USDT argument {spec!r}: unsupported size {size_s}")
    if loc.startswith("$"):
        try:
            value = int(loc[1:], 0)
        except ValueError:
            raise ParseError(f"USDT argument {spec!r}: bad constant") from None
        return UsdtArg(size, signed, ARG_CONST, value=value)
    if loc.startswith("%"):
        reg = loc[1:]
        if reg not in _REG_OFFSETS:
            raise ParseError(f"USDT argument {spec!r}: unknown register %{reg}")
        return UsdtArg(size, signed, ARG_REG, reg=reg, reg_off=_REG_OFFSETS[reg])
    mm = _MEM_RE.match(loc)
    if mm:
        off = int(mm.group(1), 0) if mm.group(1) else 0
        reg = mm.group(2)
        if reg not in _REG_OFFSETS:
            raise ParseError(f"USDT argument {spec!r}: unknown register %{reg}")
        return UsdtArg(size, signed, ARG_REG_DEREF, value=off, reg=reg,
                       reg_off=_REG_OFFSETS[reg])
    if "(" in loc and "," in loc:
        raise ParseError(f"USDT argument {spec!r}: scaled-index addressing is not supported")
    raise ParseError(f"USDT argument {spec!r}: cannot parse location {loc!r}")


def parse_usdt_args(spec: str) -> tuple[UsdtArg, ...]:
    """Parse a whole space-separated argument string."""
    parts = spec.split()
    if len(parts) > MAX_ARGS:
        raise ParseError(f"USDT probe has {len(parts)} arguments, at most {MAX_ARGS} supported")
    return tuple(parse_arg_spec(p) for p in parts)


def _note_strings(desc: bytes, off: int, n: int) -> list[str]:
    out = []
    for _ in range(n):
        end = desc.find(b"\0", off)
        if end < 0:
            raise ParseError("USDT note: unterminated string")
        out.append(desc[off:end].decode(errors="replace"))
        off = end + 1
    return out


def parse_usdt_notes(elf: ElfFile, *, parse_args: bool = True) -> list[UsdtNote]:
    """All USDT notes of an ELF file, with ``pc`` adjusted for ``.stapsdt.base`` (prelink)."""
    try:
        notes = elf.notes(".note.stapsdt")
    except ElfError as e:
        raise ParseError(f"bad .note.stapsdt: {e}") from None
    base_sec = elf.section(".stapsdt.base")
    out = []
    for n in notes:
        if n.name != "stapsdt" or n.type != NT_STAPSDT:
            continue
        if len(n.desc) < 24:
            raise ParseError(f"USDT note too short ({len(n.desc)} bytes)")
        pc, base, sema = struct.unpack_from("<QQQ", n.desc, 0)
        provider, name, args = _note_strings(n.desc, 24, 3)
        if base_sec is not None and base and base != base_sec.addr:
            # the binary was prelinked: shift addresses by the base section's move
            delta = base_sec.addr - base
            pc += delta
            if sema:
                sema += delta
        parsed = parse_usdt_args(args) if parse_args else ()
        out.append(UsdtNote(provider, name, pc, base, sema, args, parsed))
    return out


def find_usdt(binary: str, provider: str, name: str) -> list[UsdtNote]:
    path = resolve_binary(binary)
    with ElfFile.open(path) as elf:
        return [n for n in parse_usdt_notes(elf, parse_args=False)
                if n.provider == provider and n.name == name]


def encode_spec(args: Sequence[UsdtArg], cookie: int = 0) -> bytes:
    """``struct __bpf_usdt_spec`` bytes (usdt.bpf.h layout)."""
    if len(args) > MAX_ARGS:
        raise AttachError(f"{len(args)} USDT arguments, at most {MAX_ARGS}")
    buf = bytearray(SPEC_SIZE)
    for i, a in enumerate(args):
        ARG_SPEC.pack_into(buf, i * 16, a.value & 0xFFFF_FFFF_FFFF_FFFF, a.kind, a.reg_off,
                           a.signed, a.bitshift)
    struct.pack_into("<Qh", buf, MAX_ARGS * 16, cookie & 0xFFFF_FFFF_FFFF_FFFF, len(args))
    return bytes(buf)


# spec ids in use per specs map (keyed by map id), so several attachments can share maps
_used_ids: dict[int, set[int]] = {}


def _map_key(m: Any) -> int:
    try:
        return int(m.info().id)
    except Exception:
        return id(m)


class UsdtLink(Link):
    """The uprobes of one USDT probe; closing detaches them and frees the spec ids."""

    def __init__(self, links: list[Link], name: str, *, program: Any, specs_map: Any,
                 ip_map: Any, spec_ids: list[int], ips: list[int]) -> None:
        super().__init__(-1, name, program=program, hook=name)
        self.links = links
        self._specs_ref = weakref.ref(specs_map) if specs_map is not None else None
        self._ip_ref = weakref.ref(ip_map) if ip_map is not None else None
        self._key = _map_key(specs_map)
        self.spec_ids = spec_ids
        self.ips = ips
        self._open = True

    @property
    def closed(self) -> bool:
        return not self._open

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for lk in self.links:
            lk.close()
            if self.program is not None and lk in self.program.links:
                self.program.links.remove(lk)
        ipm = self._ip_ref() if self._ip_ref else None
        for ip in self.ips:
            if ipm is not None and not ipm.closed:
                try:
                    ipm.delete(struct.pack("<q", ip))
                except Exception:
                    pass
        used = _used_ids.get(self._key, set())
        for sid in self.spec_ids:
            used.discard(sid)

    def info(self) -> Any:
        raise AttachError("a USDT attachment is a set of uprobe links: see .links")

    def pin(self, path: str) -> None:
        raise AttachError("a USDT attachment is a set of links and cannot be pinned as one")

    def __del__(self) -> None:
        pass


def attach_usdt(prog: Any, binary: str, provider: str, name: str, *, specs_map: Any,
                ip_map: Any = None, pid: int = -1, cookie: int = 0) -> UsdtLink:
    """Attach ``prog`` to USDT probe ``provider:name`` of ``binary`` (every location).

    ``specs_map``/``ip_map`` are the program's ``__bpf_usdt_specs`` and
    ``__bpf_usdt_ip_to_spec_id`` maps; ``cookie`` is what ``bpf_usdt_cookie()`` returns.
    """
    path = resolve_binary(binary, pid)
    with ElfFile.open(path) as elf:
        notes = [n for n in parse_usdt_notes(elf, parse_args=False)
                 if n.provider == provider and n.name == name]
        if not notes:
            raise AttachError(f"no USDT probe {provider}:{name} in {path}")
        is_exec = elf.type == 2  # ET_EXEC: probe addresses are absolute
        locs = []
        for n in notes:
            args = parse_usdt_args(n.args_spec)
            try:
                off = elf.vaddr_to_offset(n.pc)
                sema_off = elf.vaddr_to_offset(n.semaphore) if n.semaphore else 0
            except ElfError as e:
                raise AttachError(f"USDT {provider}:{name}: {e}") from None
            locs.append((n, args, off, sema_off))
    key = _map_key(specs_map)
    used = _used_ids.setdefault(key, set())
    max_ids = int(getattr(specs_map, "max_entries", 256))
    links: list[Link] = []
    spec_ids: list[int] = []
    ips: list[int] = []
    what = f"usdt/{path}:{provider}:{name}"
    # loaded for uprobe-multi links (as libbpf does when the kernel has them): one link
    # for every location; else one uprobe per location
    multi = int(getattr(prog, "expected_attach_type", 0) or 0) == AttachType.TRACE_UPROBE_MULTI
    try:
        for n, args, off, sema_off in locs:
            sid = next((i for i in range(max_ids) if i not in used), None)
            if sid is None:
                raise AttachError(f"{what}: the USDT specs map is full ({max_ids} specs)")
            used.add(sid)
            spec_ids.append(sid)
            specs_map.update(struct.pack("<i", sid), encode_spec(args, cookie))
            if ip_map is not None:
                ip = _absolute_ip(path, n.pc, off, pid, is_exec)
                if ip is not None:
                    ip_map.update(struct.pack("<q", ip), struct.pack("<I", sid))
                    ips.append(ip)
            if not multi:
                links.append(attach_uprobe(prog, path, offset=off, pid=pid, cookie=sid,
                                           ref_ctr_offset=sema_off))
        if multi:
            semas = [sema for _n, _a, _o, sema in locs]
            links.append(attach_uprobe_multi(
                prog, path, offsets=[off for _n, _a, off, _s in locs], pid=pid,
                cookies=spec_ids, ref_ctr_offsets=semas if any(semas) else None))
    except BaseException:
        for lk in links:
            lk.close()
            if lk in prog.links:
                prog.links.remove(lk)
        for sid in spec_ids:
            used.discard(sid)
        raise
    ul = UsdtLink(links, what, program=prog, specs_map=specs_map, ip_map=ip_map,
                  spec_ids=spec_ids, ips=ips)
    prog.links.append(ul)
    return ul


def _absolute_ip(path: str, vaddr: int, file_off: int, pid: int, is_exec: bool) -> int | None:
    """Run-time address of a probe, for kernels without BPF cookies (IP -> spec id)."""
    if is_exec:
        return vaddr
    if pid <= 0:
        return None
    real = os.path.realpath(path)
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6 or os.path.realpath(parts[5].strip()) != real:
                    continue
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                moff = int(parts[2], 16)
                if moff <= file_off < moff + (hi - lo):
                    return lo + file_off - moff
    except OSError:
        return None
    return None
