"""Parsing ``.BTF.ext``: per-section function info, line info and CO-RE relocations.

The section names and strings it refers to live in the object's ``.BTF`` string
section, so parsing needs the matching :class:`~bpfkit.btf.Spec`.  Records are read
with the record size the header gives (newer compilers may append fields), and every
offset is checked so a corrupt object yields :class:`~bpfkit.errors.BTFError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import BTFError
from .parse import BTF_MAGIC, Spec

__all__ = ["BTFExt", "CoreRelo", "CoreReloKind", "FuncInfo", "LineInfo", "parse_btf_ext"]

BTF_EXT_VERSION = 1
_MIN_HDR = 24          # magic..line_info_len
_CORE_HDR = 32         # ..core_relo_len
_FUNC_REC = 8
_LINE_REC = 16
_CORE_REC = 16
BPF_INSN_SIZE = 8


class CoreReloKind(IntEnum):
    """``enum bpf_core_relo_kind`` from the kernel uapi."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(slots=True)
class FuncInfo:
    """A function's start: ``insn_off`` is a byte offset into its ELF section."""

    insn_off: int
    type_id: int

    @property
    def insn_idx(self) -> int:
        return self.insn_off // BPF_INSN_SIZE


@dataclass(slots=True)
class LineInfo:
    """The source line of the instruction at byte offset ``insn_off``.

    ``file_name_off``/``line_off`` are the raw string offsets, which a loader passes to
    the kernel unchanged (they index the ``.BTF`` string section).
    """

    insn_off: int
    file_name: str
    line: int
    column: int
    line_text: str
    file_name_off: int = 0
    line_off: int = 0

    @property
    def insn_idx(self) -> int:
        return self.insn_off // BPF_INSN_SIZE

    @property
    def line_col(self) -> int:
        """The packed ``line << 10 | column`` the kernel expects."""
        return (self.line << 10) | (self.column & 0x3FF)


@dataclass(slots=True)
class CoreRelo:
    """One CO-RE relocation: ``access_str`` like ``"0:1:0:5"`` relative to ``type_id``."""

    insn_off: int
    type_id: int
    access_str: str
    kind: CoreReloKind | int
    access_str_off: int = 0

    @property
    def insn_idx(self) -> int:
        return self.insn_off // BPF_INSN_SIZE

    @property
    def accessors(self) -> list[int]:
        """The access string as integers (``"0:1:0:5"`` -> ``[0, 1, 0, 5]``)."""
        try:
            return [int(x) for x in self.access_str.split(":") if x]
        except ValueError:
            raise BTFError(f"CO-RE relocation at instruction {self.insn_idx}: malformed access "
                           f"string {self.access_str[:80]!r} (want numbers joined by ':')") from None


@dataclass(slots=True)
class BTFExt:
    """Everything in a ``.BTF.ext`` section, keyed by ELF section name."""

    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)
    func_info_rec_size: int = _FUNC_REC
    line_info_rec_size: int = _LINE_REC
    core_relo_rec_size: int = _CORE_REC
    byteorder: str = "little"


def _string(spec: Spec, off: int, what: str) -> str:
    try:
        return spec.string(off)
    except BTFError as e:
        raise BTFError(f".BTF.ext {what}: {e}")


def _subsections(data: bytes, fmt: str, start: int, length: int, min_rec: int,
                 what: str, spec: Spec) -> tuple[int, list[tuple[str, int, int]]]:
    """Walk one info block: return its rec_size and (section name, records offset, count)."""
    if length == 0:
        return min_rec, []
    end = start + length
    if length < 4:
        raise BTFError(f".BTF.ext {what}: block of {length} bytes has no record size")
    (rec_size,) = struct.unpack_from(fmt + "I", data, start)
    if rec_size < min_rec or rec_size % 4:
        raise BTFError(f".BTF.ext {what}: bad record size {rec_size} (at least {min_rec}, "
                       "a multiple of 4)")
    out: list[tuple[str, int, int]] = []
    p = start + 4
    while p < end:
        if p + 8 > end:
            raise BTFError(f".BTF.ext {what}: truncated section header at offset {p}")
        sec_off, num = struct.unpack_from(fmt + "II", data, p)
        name = _string(spec, sec_off, f"{what} section name at offset {p}")
        if num == 0:
            raise BTFError(f".BTF.ext {what}: section {name!r} has no records")
        p += 8
        if p + num * rec_size > end:
            raise BTFError(f".BTF.ext {what}: section {name!r} claims {num} records of "
                           f"{rec_size} bytes, more than the {end - p} bytes left")
        out.append((name, p, num))
        p += num * rec_size
    return rec_size, out


def parse_btf_ext(data: bytes | bytearray | memoryview, spec: Spec) -> BTFExt:
    """Parse ``.BTF.ext`` contents; strings are resolved against ``spec`` (the object's .BTF)."""
    raw = bytes(data)
    if len(raw) < 8:
        raise BTFError(f".BTF.ext too short: {len(raw)} bytes")
    if raw[0] == 0x9F and raw[1] == 0xEB:
        fmt, order = "<", "little"
    elif raw[0] == 0xEB and raw[1] == 0x9F:
        fmt, order = ">", "big"
    else:
        raise BTFError(f"bad .BTF.ext magic 0x{raw[0]:02x}{raw[1]:02x} (want 0x{BTF_MAGIC:04x})")
    if order != spec.byteorder:
        raise BTFError(".BTF.ext byte order differs from its .BTF's")
    _magic, version, _flags, hdr_len = struct.unpack_from(fmt + "HBBI", raw, 0)
    if version != BTF_EXT_VERSION:
        raise BTFError(f"unsupported .BTF.ext version {version}")
    if hdr_len < _MIN_HDR or hdr_len > len(raw):
        raise BTFError(f"bad .BTF.ext header length {hdr_len} (data is {len(raw)} bytes; "
                       f"the header has at least {_MIN_HDR})")
    fi_off, fi_len, li_off, li_len = struct.unpack_from(fmt + "IIII", raw, 8)
    cr_off = cr_len = 0
    if hdr_len >= _CORE_HDR:
        cr_off, cr_len = struct.unpack_from(fmt + "II", raw, 24)
    body = len(raw) - hdr_len
    for what, off, ln in (("func_info", fi_off, fi_len), ("line_info", li_off, li_len),
                          ("core_relo", cr_off, cr_len)):
        if off + ln > body:
            raise BTFError(f".BTF.ext {what} block [{off}, +{ln}) runs past the end of the data "
                           f"({body} bytes after the header)")

    ext = BTFExt(byteorder=order)
    rec, subs = _subsections(raw, fmt, hdr_len + fi_off, fi_len, _FUNC_REC, "func_info", spec)
    ext.func_info_rec_size = rec
    for name, p, num in subs:
        items = ext.func_info.setdefault(name, [])
        for i in range(num):
            insn_off, type_id = struct.unpack_from(fmt + "II", raw, p + i * rec)
            if type_id >= len(spec):
                raise BTFError(f".BTF.ext func_info {name!r} record {i}: type id {type_id} is "
                               f"out of range (BTF has {len(spec)} ids)")
            items.append(FuncInfo(insn_off, type_id))

    rec, subs = _subsections(raw, fmt, hdr_len + li_off, li_len, _LINE_REC, "line_info", spec)
    ext.line_info_rec_size = rec
    for name, p, num in subs:
        lines = ext.line_info.setdefault(name, [])
        for i in range(num):
            insn_off, file_off, line_off, line_col = struct.unpack_from(fmt + "IIII", raw,
                                                                        p + i * rec)
            where = f"line_info {name!r} record {i}"
            fname = _string(spec, file_off, where + " file name")
            text = _string(spec, line_off, where + " line text")
            lines.append(LineInfo(insn_off, fname, line_col >> 10, line_col & 0x3FF, text,
                                  file_off, line_off))

    rec, subs = _subsections(raw, fmt, hdr_len + cr_off, cr_len, _CORE_REC, "core_relo", spec)
    ext.core_relo_rec_size = rec
    for name, p, num in subs:
        relos = ext.core_relos.setdefault(name, [])
        for i in range(num):
            insn_off, type_id, acc_off, kind = struct.unpack_from(fmt + "IIII", raw, p + i * rec)
            where = f"core_relo {name!r} record {i}"
            if type_id >= len(spec):
                raise BTFError(f".BTF.ext {where}: type id {type_id} is out of range "
                               f"(BTF has {len(spec)} ids)")
            acc = _string(spec, acc_off, where + " access string")
            try:
                k: CoreReloKind | int = CoreReloKind(kind)
            except ValueError:
                k = kind  # a kind newer than this code: the CO-RE engine reports it
            relos.append(CoreRelo(insn_off, type_id, acc, k, acc_off))
    return ext
