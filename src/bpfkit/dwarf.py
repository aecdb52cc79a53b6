"""DWARF 4/5 reader for BPF objects: the types ``.BTF`` leaves out.

Why: clang puts into ``.BTF`` only the types that globals, maps and function
signatures reach.  A ``struct event`` used only as a local and sent through a ring or
perf buffer is missing there, but every ``-g`` object still describes it in DWARF.  This
module reads ``.debug_info``/``.debug_abbrev``/``.debug_str``/``.debug_str_offsets``/
``.debug_addr``/``.debug_line``/``.debug_line_str`` as clang-19 emits them for BPF
(DWARF 5 by default, DWARF 4 with ``-gdwarf-4``) and converts the type DIEs into
bpfkit's BTF model (:mod:`bpfkit.btf.types`), so the BTF value codec decodes them like
any BTF type.

Pure (bytes in, objects out; no system calls).  A relocatable BPF object keeps
``R_BPF_64_ABS32``/``R_BPF_64_ABS64`` relocations in ``.rel.debug_*`` (abbrev, line,
str_offsets and string offsets; addresses); they are applied before parsing, with the
implicit (in-place) addends of ``SHT_REL``.  Work and memory are bounded by the input:
every DIE, abbreviation and line row consumes at least one input byte, the DIE tree is
walked with an explicit stack, type chains are followed with a depth limit, and any
malformed input raises :class:`DwarfError` (a :class:`~bpfkit.errors.ParseError`) saying
which section and offset.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .btf.parse import Spec
from .btf.types import (
    BTF_INT_BOOL,
    BTF_INT_CHAR,
    BTF_INT_SIGNED,
    Array,
    BTFType,
    Const,
    Enum,
    Enum64,
    EnumValue,
    Float,
    FuncProto,
    Fwd,
    Int,
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Typedef,
    Union,
    Volatile,
)
from .elf import (
    R_BPF_64_ABS32,
    R_BPF_64_ABS64,
    SHF_COMPRESSED,
    SHT_REL,
    SHT_RELA,
    STT_SECTION,
    ElfFile,
)
from .errors import DwarfError

__all__ = ["DIE", "DebugInfo", "DwarfError", "LineRow", "Unit", "debug_sections"]

# --- tags (DWARF 5, section 7.5.3) ----------------------------------------------------
TAG_array_type = 0x01
TAG_enumeration_type = 0x04
TAG_formal_parameter = 0x05
TAG_lexical_block = 0x0B
TAG_member = 0x0D
TAG_pointer_type = 0x0F
TAG_compile_unit = 0x11
TAG_structure_type = 0x13
TAG_subroutine_type = 0x15
TAG_typedef = 0x16
TAG_union_type = 0x17
TAG_unspecified_parameters = 0x18
TAG_variable = 0x34
TAG_inlined_subroutine = 0x1D
TAG_subrange_type = 0x21
TAG_base_type = 0x24
TAG_const_type = 0x26
TAG_enumerator = 0x28
TAG_subprogram = 0x2E
TAG_volatile_type = 0x35
TAG_restrict_type = 0x37
TAG_unspecified_type = 0x3B
TAG_atomic_type = 0x47

# --- attributes -----------------------------------------------------------------------
AT_location = 0x02
AT_name = 0x03
AT_byte_size = 0x0B
AT_bit_offset = 0x0C
AT_bit_size = 0x0D
AT_stmt_list = 0x10
AT_low_pc = 0x11
AT_high_pc = 0x12
AT_comp_dir = 0x1B
AT_const_value = 0x1C
AT_upper_bound = 0x2F
AT_abstract_origin = 0x31
AT_count = 0x37
AT_data_member_location = 0x38
AT_declaration = 0x3C
AT_encoding = 0x3E
AT_type = 0x49
AT_lower_bound = 0x22
AT_data_bit_offset = 0x6B
AT_str_offsets_base = 0x72
AT_addr_base = 0x73

# --- forms ----------------------------------------------------------------------------
FORM_addr = 0x01
FORM_block2 = 0x03
FORM_block4 = 0x04
FORM_data2 = 0x05
FORM_data4 = 0x06
FORM_data8 = 0x07
FORM_string = 0x08
FORM_block = 0x09
FORM_block1 = 0x0A
FORM_data1 = 0x0B
FORM_flag = 0x0C
FORM_sdata = 0x0D
FORM_strp = 0x0E
FORM_udata = 0x0F
FORM_ref_addr = 0x10
FORM_ref1 = 0x11
FORM_ref2 = 0x12
FORM_ref4 = 0x13
FORM_ref8 = 0x14
FORM_ref_udata = 0x15
FORM_indirect = 0x16
FORM_sec_offset = 0x17
FORM_exprloc = 0x18
FORM_flag_present = 0x19
FORM_strx = 0x1A
FORM_addrx = 0x1B
FORM_ref_sup4 = 0x1C
FORM_strp_sup = 0x1D
FORM_data16 = 0x1E
FORM_line_strp = 0x1F
FORM_ref_sig8 = 0x20
FORM_implicit_const = 0x21
FORM_loclistx = 0x22
FORM_rnglistx = 0x23
FORM_ref_sup8 = 0x24
FORM_strx1 = 0x25
FORM_strx2 = 0x26
FORM_strx3 = 0x27
FORM_strx4 = 0x28
FORM_addrx1 = 0x29
FORM_addrx2 = 0x2A
FORM_addrx3 = 0x2B
FORM_addrx4 = 0x2C

_FIXED = {FORM_data1: 1, FORM_data2: 2, FORM_data4: 4, FORM_data8: 8, FORM_flag: 1,
          FORM_ref1: 1, FORM_ref2: 2, FORM_ref4: 4, FORM_ref8: 8, FORM_strx1: 1,
          FORM_strx2: 2, FORM_strx3: 3, FORM_strx4: 4, FORM_addrx1: 1, FORM_addrx2: 2,
          FORM_addrx3: 3, FORM_addrx4: 4, FORM_ref_sup4: 4, FORM_ref_sup8: 8, FORM_ref_sig8: 8}
_REFS = {FORM_ref1, FORM_ref2, FORM_ref4, FORM_ref8, FORM_ref_udata}
_STRX = {FORM_strx, FORM_strx1, FORM_strx2, FORM_strx3, FORM_strx4}
_ADDRX = {FORM_addrx, FORM_addrx1, FORM_addrx2, FORM_addrx3, FORM_addrx4}

# --- base type encodings --------------------------------------------------------------
ATE_boolean = 0x02
ATE_float = 0x04
ATE_signed = 0x05
ATE_signed_char = 0x06
ATE_unsigned = 0x07
ATE_unsigned_char = 0x08
ATE_UTF = 0x10

DW_OP_plus_uconst = 0x23
DW_OP_constu = 0x10

MAX_TYPE_DEPTH = 64
"""Longest typedef/qualifier chain followed when sizing a type (like BTF's limit)."""

_DEBUG_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_str_offsets",
                   ".debug_addr", ".debug_line", ".debug_line_str")
_ELF_CHDR = struct.Struct("<IIQQ")
_ELFCOMPRESS_ZLIB = 1


# ====================================================================== section access
@dataclass(slots=True)
class DebugSections:
    """The ``.debug_*`` sections of one object, relocations applied.

    ``targets`` maps, per section, the offset of each address-sized relocation to the
    ELF section its symbol lives in (how a line table row knows which program section
    its address belongs to in a relocatable object).
    """

    data: dict[str, bytes] = field(default_factory=dict)
    targets: dict[str, dict[int, str]] = field(default_factory=dict)
    byteorder: str = "little"


def _section_bytes(elf: ElfFile, name: str) -> bytes | None:
    sec = elf.section(name)
    if sec is None:
        return None
    raw = sec.data()
    if not sec.flags & SHF_COMPRESSED:
        return raw
    if len(raw) < _ELF_CHDR.size:
        raise DwarfError(f"{elf.name}: compressed section {name} is shorter than its header")
    ch_type, _res, size, _align = _ELF_CHDR.unpack_from(raw)
    if ch_type != _ELFCOMPRESS_ZLIB:
        raise DwarfError(f"{elf.name}: section {name} uses compression type {ch_type}; "
                         "only zlib (clang -gz=zlib) is supported: rebuild with -gz=none")
    d = zlib.decompressobj()
    try:
        out = d.decompress(raw[_ELF_CHDR.size:], size)
    except zlib.error as e:
        raise DwarfError(f"{elf.name}: cannot decompress section {name}: {e}") from None
    if len(out) != size or d.unconsumed_tail:
        raise DwarfError(f"{elf.name}: section {name} decompresses to {len(out)} bytes, "
                         f"its header says {size}")
    return out


def debug_sections(elf: ElfFile) -> DebugSections:
    """Read the DWARF sections of ``elf`` and apply their ``.rel``/``.rela`` relocations."""
    out = DebugSections(byteorder=elf.byteorder)
    e = "<" if elf.byteorder == "little" else ">"
    relsecs = elf.relocation_sections()
    for name in _DEBUG_SECTIONS:
        raw = _section_bytes(elf, name)
        if raw is None:
            continue
        sec = elf.section(name)
        assert sec is not None
        rel = relsecs.get(sec.index)
        targets: dict[int, str] = {}
        if rel is not None and rel.type in (SHT_REL, SHT_RELA):
            buf = bytearray(raw)
            for r in elf.relocations(rel):
                if r.type == R_BPF_64_ABS32:
                    width, fmt = 4, e + "I"
                elif r.type == R_BPF_64_ABS64:
                    width, fmt = 8, e + "Q"
                else:
                    continue
                if r.offset < 0 or r.offset + width > len(buf):
                    raise DwarfError(f"{elf.name}: relocation at {r.offset:#x} in {rel.name} "
                                     f"runs past the end of {name} ({len(buf)} bytes)")
                implicit = struct.unpack_from(fmt, buf, r.offset)[0] if rel.type == SHT_REL else 0
                sym = r.symbol
                value = (implicit + r.addend + sym.value) & ((1 << (8 * width)) - 1)
                struct.pack_into(fmt, buf, r.offset, value)
                if width == 8:
                    targets[r.offset] = sym.section_name if sym.type == STT_SECTION or \
                        sym.section_name else sym.name
            raw = bytes(buf)
        out.data[name] = raw
        out.targets[name] = targets
    return out


# ====================================================================== byte reader
class _Reader:
    """A cursor over one section; every read is bounds-checked."""

    __slots__ = ("buf", "pos", "end", "sec", "e")

    def __init__(self, buf: bytes, sec: str, pos: int = 0, end: int | None = None,
                 e: str = "<") -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.sec = sec
        self.e = e

    def fail(self, what: str) -> DwarfError:
        return DwarfError(f"{self.sec} at offset {self.pos:#x}: {what}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise self.fail(f"{n} bytes needed, {self.end - self.pos} left")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little" if self.e == "<" else "big")

    def u8(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of data")
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def uleb(self) -> int:
        result = shift = 0
        buf, pos, end = self.buf, self.pos, self.end
        while True:
            if pos >= end:
                self.pos = pos
                raise self.fail("LEB128 number runs past the end")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
            if shift > 70:
                self.pos = pos
                raise self.fail("LEB128 number longer than 10 bytes")
        self.pos = pos
        return result

    def sleb(self) -> int:
        start = self.pos
        v = self.uleb()
        bits = 7 * (self.pos - start)
        if v & (1 << (bits - 1)):
            v -= 1 << bits
        return v

    def cstr(self) -> bytes:
        nul = self.buf.find(b"\0", self.pos, self.end)
        if nul < 0:
            raise self.fail("string without NUL terminator")
        s = self.buf[self.pos:nul]
        self.pos = nul + 1
        return s


def _cstr_at(buf: bytes, off: int, sec: str) -> str:
    if not 0 <= off < len(buf):
        raise DwarfError(f"string offset {off:#x} is outside {sec} ({len(buf)} bytes)")
    nul = buf.find(b"\0", off)
    if nul < 0:
        raise DwarfError(f"string at {sec}+{off:#x} has no NUL terminator")
    return buf[off:nul].decode("utf-8", "replace")


# ====================================================================== DIEs
@dataclass(slots=True)
class DIE:
    """One debugging information entry; ``attrs`` maps DW_AT_* to a decoded value.

    References (``DW_AT_type``...) are absolute ``.debug_info`` offsets; strings are
    ``str``; blocks and expressions ``bytes``; flags ``bool``; constants ``int``.
    """

    offset: int
    tag: int
    attrs: dict[int, Any]
    children: list[DIE] = field(default_factory=list)
    parent: DIE | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        v = self.attrs.get(AT_name, "")
        return v if isinstance(v, str) else ""

    def get_int(self, attr: int, default: int | None = None) -> int | None:
        v = self.attrs.get(attr)
        return v if isinstance(v, int) and not isinstance(v, bool) else default


@dataclass(slots=True)
class Unit:
    """One compile unit: its header fields and root DIE."""

    offset: int
    version: int
    unit_type: int
    address_size: int
    abbrev_offset: int
    root: DIE | None = None
    str_offsets_base: int = 0
    addr_base: int = 0
    offset_size: int = 4


@dataclass(slots=True, frozen=True)
class LineRow:
    """One row of a line table: ``address`` is an offset in ``section`` (the ELF section
    the sequence's DW_LNE_set_address relocation names, "" when it had none)."""

    section: str
    address: int
    file: str
    line: int
    column: int


@dataclass(slots=True)
class _Abbrev:
    tag: int
    children: bool
    specs: list[tuple[int, int, int]]  # (attr, form, implicit_const)


def _abbrev_table(data: bytes, off: int) -> dict[int, _Abbrev]:
    r = _Reader(data, ".debug_abbrev", off)
    table: dict[int, _Abbrev] = {}
    while True:
        code = r.uleb()
        if code == 0:
            return table
        tag = r.uleb()
        children = r.u8() != 0
        specs: list[tuple[int, int, int]] = []
        while True:
            at = r.uleb()
            form = r.uleb()
            ic = r.sleb() if form == FORM_implicit_const else 0
            if at == 0 and form == 0:
                break
            specs.append((at, form, ic))
        if code in table:
            raise r.fail(f"abbreviation code {code} defined twice")
        table[code] = _Abbrev(tag, children, specs)


# read kinds of the DIE loop (see DebugInfo._parse_dies)
_K_FIX, _K_REF, _K_PRESENT, _K_CONST, _K_ULEB, _K_REFU, _K_SLEB, _K_STRX, _K_ADDRX, \
    _K_FLAG, _K_STRING, _K_STRP, _K_LSTRP, _K_BLOCK, _K_INDIRECT = range(15)


def _uleb_rest(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """Finish a LEB128 number whose first byte (``first``, >= 0x80) was read already."""
    result, shift = first & 0x7F, 7
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, pos
        if shift > 70:
            raise DwarfError(f"LEB128 number at offset {pos:#x} is longer than 10 bytes")


def _form_plan(form: int, ic: int, unit: Unit) -> tuple[int, int]:
    if form in _REFS:
        return (_K_REF, _FIXED[form]) if form in _FIXED else (_K_REFU, 0)
    if form in _STRX:
        return _K_STRX, _FIXED.get(form, 0)
    if form in _ADDRX:
        return _K_ADDRX, _FIXED.get(form, 0)
    if form == FORM_flag:
        return _K_FLAG, 1
    if form in _FIXED:
        return _K_FIX, _FIXED[form]
    simple = {FORM_flag_present: (_K_PRESENT, 0), FORM_udata: (_K_ULEB, 0),
              FORM_sdata: (_K_SLEB, 0), FORM_loclistx: (_K_ULEB, 0),
              FORM_rnglistx: (_K_ULEB, 0), FORM_string: (_K_STRING, 0),
              FORM_strp: (_K_STRP, unit.offset_size),
              FORM_line_strp: (_K_LSTRP, unit.offset_size),
              FORM_sec_offset: (_K_FIX, unit.offset_size),
              FORM_strp_sup: (_K_FIX, unit.offset_size),
              FORM_ref_addr: (_K_FIX, unit.offset_size if unit.version >= 3
                              else unit.address_size),
              FORM_addr: (_K_FIX, unit.address_size), FORM_exprloc: (_K_BLOCK, 0),
              FORM_block: (_K_BLOCK, 0), FORM_block1: (_K_BLOCK, 1),
              FORM_block2: (_K_BLOCK, 2), FORM_block4: (_K_BLOCK, 4),
              FORM_data16: (_K_FIX, 16), FORM_indirect: (_K_INDIRECT, 0)}
    if form == FORM_implicit_const:
        return _K_CONST, ic
    if form in simple:
        return simple[form]
    raise DwarfError(f"unknown attribute form {form:#x} in the abbreviations of the unit at "
                     f".debug_info+{unit.offset:#x}")


def _plans(table: dict[int, _Abbrev], unit: Unit
           ) -> dict[int, tuple[int, bool, list[tuple[int, int, int]]]]:
    return {code: (ab.tag, ab.children, [(at, *_form_plan(form, ic, unit))
                                         for at, form, ic in ab.specs])
            for code, ab in table.items()}


class DebugInfo:
    """The parsed DWARF of one object: compile units, DIEs by offset, line tables.

    Build with :meth:`from_elf` / :meth:`from_file`; :meth:`to_btf` converts the type
    DIEs into a :class:`~bpfkit.btf.Spec`.
    """

    def __init__(self, sections: DebugSections, *, name: str = "<object>") -> None:
        self.name = name
        self.sections = sections
        self._e = "<" if sections.byteorder == "little" else ">"
        self.units: list[Unit] = []
        self.dies: dict[int, DIE] = {}
        info = sections.data.get(".debug_info")
        if not info:
            raise DwarfError(f"{name}: no DWARF (.debug_info is missing: the object was "
                             "built without -g, or its debug info was stripped)")
        self._parse_units(info)
        self._btf: Spec | None = None
        self._btf_ids: dict[int, int] = {}

    @classmethod
    def from_elf(cls, elf: ElfFile) -> DebugInfo:
        return cls(debug_sections(elf), name=elf.name)

    @classmethod
    def from_file(cls, path: str) -> DebugInfo:
        with ElfFile.open(path) as elf:
            return cls.from_elf(elf)

    # -------------------------------------------------------------- .debug_info
    def _parse_units(self, info: bytes) -> None:
        abbrev_data = self.sections.data.get(".debug_abbrev", b"")
        abbrevs: dict[int, dict[int, _Abbrev]] = {}
        pos = 0
        while pos < len(info):
            r = _Reader(info, ".debug_info", pos, e=self._e)
            length = r.u(4)
            osize = 4
            if length == 0xFFFFFFFF:
                length = r.u(8)
                osize = 8
            elif length >= 0xFFFFFFF0:
                raise r.fail(f"reserved unit length {length:#x}")
            end = r.pos + length
            if end > len(info):
                raise r.fail(f"unit of {length} bytes runs past the end of .debug_info "
                             f"({len(info)} bytes)")
            r.end = end
            version = r.u(2)
            if version == 5:
                unit_type = r.u8()
                asize = r.u8()
                aoff = r.u(osize)
                if unit_type in (4, 5):  # skeleton/split_compile: dwo id
                    r.take(8)
                elif unit_type in (2, 6):  # type/split_type: signature + type offset
                    r.take(8 + osize)
            elif version in (2, 3, 4):
                unit_type = 1
                aoff = r.u(osize)
                asize = r.u8()
            else:
                raise r.fail(f"unsupported DWARF version {version} (this reader handles 2-5)")
            if asize not in (4, 8):
                raise r.fail(f"unsupported address size {asize}")
            unit = Unit(pos, version, unit_type, asize, aoff, offset_size=osize)
            if aoff not in abbrevs:
                if not 0 <= aoff < len(abbrev_data):
                    raise r.fail(f"abbreviation offset {aoff:#x} is outside .debug_abbrev "
                                 f"({len(abbrev_data)} bytes)")
                abbrevs[aoff] = _abbrev_table(abbrev_data, aoff)
            self._parse_dies(r, unit, abbrevs[aoff])
            self.units.append(unit)
            pos = end

    def _parse_dies(self, r: _Reader, unit: Unit, table: dict[int, _Abbrev]) -> None:
        """Read one unit's DIEs.  The hot loop of the reader: each abbreviation is first
        compiled into a plan of (attribute, read kind, size) so that reading an attribute
        is one comparison chain on small ints and inline LEB128 decoding."""
        plans = _plans(table, unit)
        stack: list[DIE] = []
        pending_str: list[tuple[DIE, int, int]] = []
        pending_addr: list[tuple[DIE, int, int]] = []
        base = unit.offset
        strs = self.sections.data.get(".debug_str", b"")
        lstrs = self.sections.data.get(".debug_line_str", b"")
        order: Any = "little" if self._e == "<" else "big"
        frombytes = int.from_bytes
        buf, pos, end = r.buf, r.pos, r.end
        dies = self.dies
        off = pos
        try:
            while pos < end:
                off = pos
                code = buf[pos]
                pos += 1
                if code >= 0x80:
                    code, pos = _uleb_rest(buf, pos, code)
                if code == 0:
                    if stack:
                        stack.pop()
                    continue
                plan = plans.get(code)
                if plan is None:
                    raise DwarfError(f".debug_info at offset {off:#x}: abbreviation code "
                                     f"{code} is not in the unit's table (at .debug_abbrev+"
                                     f"{unit.abbrev_offset:#x})")
                tag, children, specs = plan
                attrs: dict[int, Any] = {}
                die = DIE(off, tag, attrs, [], stack[-1] if stack else None)
                for at, kind, n in specs:
                    if kind == _K_INDIRECT:
                        form = buf[pos]
                        pos += 1
                        if form >= 0x80:
                            form, pos = _uleb_rest(buf, pos, form)
                        k2 = _form_plan(form, 0, unit)
                        if k2[0] == _K_INDIRECT:
                            raise DwarfError(f".debug_info at offset {off:#x}: nested "
                                             "DW_FORM_indirect")
                        kind, n = k2
                    if kind == _K_FIX:
                        if n == 1:
                            v: Any = buf[pos]
                        else:
                            v = frombytes(buf[pos:pos + n], order)
                        pos += n
                    elif kind == _K_REF:
                        v = frombytes(buf[pos:pos + n], order) + base
                        pos += n
                    elif kind == _K_PRESENT:
                        v = True
                    elif kind == _K_CONST:
                        v = n
                    elif kind == _K_ULEB or kind == _K_REFU:
                        b = buf[pos]
                        pos += 1
                        v = b
                        if b >= 0x80:
                            v, pos = _uleb_rest(buf, pos, b)
                        if kind == _K_REFU:
                            v += base
                    elif kind == _K_SLEB:
                        start = pos
                        b = buf[pos]
                        pos += 1
                        v = b
                        if b >= 0x80:
                            v, pos = _uleb_rest(buf, pos, b)
                        bits = 7 * (pos - start)
                        if v >> (bits - 1) & 1:
                            v -= 1 << bits
                    elif kind == _K_STRX or kind == _K_ADDRX:
                        if n:
                            v = frombytes(buf[pos:pos + n], order)
                            pos += n
                        else:
                            b = buf[pos]
                            pos += 1
                            v = b if b < 0x80 else None
                            if v is None:
                                v, pos = _uleb_rest(buf, pos, b)
                        (pending_str if kind == _K_STRX else pending_addr).append((die, at, v))
                    elif kind == _K_FLAG:
                        v = buf[pos] != 0
                        pos += 1
                    elif kind == _K_STRING:
                        nul = buf.find(b"\0", pos, end)
                        if nul < 0:
                            raise DwarfError(f".debug_info at offset {pos:#x}: string "
                                             "without NUL terminator")
                        v = buf[pos:nul].decode("utf-8", "replace")
                        pos = nul + 1
                    elif kind == _K_STRP or kind == _K_LSTRP:
                        stroff = frombytes(buf[pos:pos + n], order)
                        pos += n
                        v = _cstr_at(strs if kind == _K_STRP else lstrs, stroff,
                                     ".debug_str" if kind == _K_STRP else ".debug_line_str")
                    elif kind == _K_BLOCK:
                        if n:
                            ln = frombytes(buf[pos:pos + n], order)
                            pos += n
                        else:
                            b = buf[pos]
                            pos += 1
                            ln = b
                            if b >= 0x80:
                                ln, pos = _uleb_rest(buf, pos, b)
                        v = buf[pos:pos + ln]
                        pos += ln
                    else:  # pragma: no cover - _form_plan rejects unknown forms
                        raise DwarfError(f"internal: read kind {kind}")
                    attrs[at] = v
                if pos > end:
                    raise DwarfError(f".debug_info at offset {off:#x}: DIE runs past the end "
                                     f"of its unit (at {end:#x})")
                dies[off] = die
                if stack:
                    stack[-1].children.append(die)
                elif unit.root is None:
                    unit.root = die
                if children:
                    stack.append(die)
        except IndexError:
            raise DwarfError(f".debug_info at offset {off:#x}: DIE runs past the end of the "
                             "section") from None
        root = unit.root
        if root is None:
            return
        osize, asize = unit.offset_size, unit.address_size
        unit.str_offsets_base = root.get_int(AT_str_offsets_base, 8) or 0
        unit.addr_base = root.get_int(AT_addr_base, 8) or 0
        order = "little" if self._e == "<" else "big"
        for pending, sec, base_, width in (
                (pending_str, ".debug_str_offsets", unit.str_offsets_base, osize),
                (pending_addr, ".debug_addr", unit.addr_base, asize)):
            table_ = self.sections.data.get(sec, b"")
            for die, at, idx in pending:
                p = base_ + idx * width
                if not 0 <= p <= len(table_) - width:
                    raise DwarfError(f"DIE at .debug_info+{die.offset:#x}: index {idx} is "
                                     f"outside {sec} ({len(table_)} bytes)")
                v = int.from_bytes(table_[p:p + width], order)
                die.attrs[at] = _cstr_at(strs, v, ".debug_str") if pending is pending_str else v

    # -------------------------------------------------------------- queries
    def iter_dies(self) -> list[DIE]:
        """Every DIE, in section order."""
        return list(self.dies.values())

    def die(self, offset: int) -> DIE:
        d = self.dies.get(offset)
        if d is None:
            raise DwarfError(f"{self.name}: no DIE at .debug_info+{offset:#x}")
        return d

    def _ref(self, die: DIE, attr: int = AT_type) -> DIE | None:
        v = die.attrs.get(attr)
        if v is None or isinstance(v, bool) or not isinstance(v, int):
            return None
        d = self.dies.get(v)
        if d is None:
            raise DwarfError(f"{self.name}: DIE at .debug_info+{die.offset:#x} refers to "
                             f".debug_info+{v:#x}, where no DIE starts")
        return d

    # -------------------------------------------------------------- types -> BTF
    def to_btf(self) -> Spec:
        """Every type DIE as a BTF type, in one Spec (built once and cached).

        Structs, unions, enums, typedefs, arrays (one BTF array per dimension), pointers,
        base types, const/volatile/restrict, function prototypes and bitfields.  A
        declaration becomes a FWD; ``_Atomic`` is dropped (BTF has no such kind).
        """
        if self._btf is None:
            self._btf = self._convert()
        return self._btf

    def btf_id(self, die_offset: int) -> int:
        """The id in :meth:`to_btf` of the type DIE at ``die_offset``."""
        self.to_btf()
        try:
            return self._btf_ids[die_offset]
        except KeyError:
            raise DwarfError(f"{self.name}: .debug_info+{die_offset:#x} is not a type DIE") \
                from None

    _TYPE_TAGS = frozenset({TAG_base_type, TAG_pointer_type, TAG_structure_type,
                            TAG_union_type, TAG_enumeration_type, TAG_typedef,
                            TAG_array_type, TAG_const_type, TAG_volatile_type,
                            TAG_restrict_type, TAG_subroutine_type, TAG_unspecified_type,
                            TAG_atomic_type})

    def _convert(self) -> Spec:
        ids: dict[int, int] = {}
        extra: dict[int, list[int]] = {}  # array die -> ids of inner dimensions
        nxt = 1
        order: list[DIE] = []
        for d in self.dies.values():
            if d.tag not in self._TYPE_TAGS:
                continue
            if d.tag in (TAG_unspecified_type, TAG_atomic_type):
                continue  # resolved to what they stand for below
            ids[d.offset] = nxt
            nxt += 1
            order.append(d)
            if d.tag == TAG_array_type:
                dims = [c for c in d.children if c.tag == TAG_subrange_type]
                extra[d.offset] = list(range(nxt, nxt + max(len(dims) - 1, 0)))
                nxt += max(len(dims) - 1, 0)
        index_id = nxt  # the u32 BTF arrays index with
        self._btf_ids = ids

        def ref(d: DIE) -> int:
            seen = 0
            t = self._ref(d)
            while t is not None and t.tag in (TAG_atomic_type, TAG_unspecified_type):
                if t.tag == TAG_unspecified_type or seen > MAX_TYPE_DEPTH:
                    return 0
                t = self._ref(t)
                seen += 1
            if t is None:
                return 0
            tid = ids.get(t.offset)
            if tid is None:
                raise DwarfError(f"{self.name}: DIE at .debug_info+{d.offset:#x} has a type "
                                 f"that is not a type (tag {t.tag:#x} at +{t.offset:#x})")
            return tid

        types: list[BTFType] = []
        for d in order:
            types.extend(self._one(d, ref, extra.get(d.offset, []), index_id))
        types.append(Int(4, 0, name="__ARRAY_SIZE_TYPE__"))
        # Ids were assigned in DIE order; ``types`` follows the same order.
        return Spec.build(types)

    def _one(self, d: DIE, ref: Any, inner_ids: list[int], index_id: int) -> list[BTFType]:
        name = d.name
        tag = d.tag
        where = f"{self.name}: DIE at .debug_info+{d.offset:#x}"
        if tag == TAG_base_type:
            size = d.get_int(AT_byte_size, 0) or 0
            enc = d.get_int(AT_encoding, ATE_signed)
            if enc == ATE_float:
                return [Float(size, name=name)]
            if size not in (1, 2, 4, 8, 16):
                raise DwarfError(f"{where}: base type {name!r} has size {size}")
            bits = {ATE_boolean: BTF_INT_BOOL, ATE_signed: BTF_INT_SIGNED,
                    ATE_signed_char: BTF_INT_SIGNED | BTF_INT_CHAR,
                    ATE_unsigned_char: BTF_INT_CHAR}.get(enc or 0, 0)
            if enc == ATE_UTF and size == 1:
                bits = BTF_INT_CHAR
            if bits & BTF_INT_SIGNED and bits & BTF_INT_CHAR:
                bits = BTF_INT_SIGNED  # BTF allows one encoding flag; clang marks char signed
            return [Int(size, bits, name=name)]
        if tag == TAG_pointer_type:
            return [Pointer(ref(d), name="")]
        if tag == TAG_typedef:
            return [Typedef(ref(d), name=name)]
        if tag == TAG_const_type:
            return [Const(ref(d))]
        if tag == TAG_volatile_type:
            return [Volatile(ref(d))]
        if tag == TAG_restrict_type:
            return [Restrict(ref(d))]
        if tag in (TAG_structure_type, TAG_union_type):
            if d.attrs.get(AT_declaration):
                return [Fwd(tag == TAG_union_type, name=name)]
            size = d.get_int(AT_byte_size, 0) or 0
            members = [self._member(c, ref, size, where) for c in d.children
                       if c.tag == TAG_member]
            cls = Struct if tag == TAG_structure_type else Union
            return [cls(size, members, name=name)]
        if tag == TAG_enumeration_type:
            if d.attrs.get(AT_declaration):
                return [Fwd(False, name=name)]
            size = d.get_int(AT_byte_size, 4) or 4
            signed = self._enum_signed(d)
            vals = []
            bits = 8 * size
            for c in d.children:
                if c.tag != TAG_enumerator:
                    continue
                v = c.attrs.get(AT_const_value, 0)
                if not isinstance(v, int):
                    v = int.from_bytes(v, "little") if isinstance(v, bytes) else 0
                if signed and v >= 1 << (bits - 1) and v < 1 << bits:
                    v -= 1 << bits
                vals.append(EnumValue(c.name, v))
            signed = signed or any(v.value < 0 for v in vals)
            ecls = Enum64 if size == 8 else Enum
            return [ecls(size, signed, vals, name=name)]
        if tag == TAG_array_type:
            dims = [c for c in d.children if c.tag == TAG_subrange_type]
            counts = [self._count(c) for c in dims] or [0]
            elem = ref(d)
            # dimension 0 is this DIE's own id; dimension i > 0 is inner_ids[i - 1], and
            # each dimension's element is the next one (the last one's is the element type)
            return [Array(inner_ids[i] if i < len(counts) - 1 else elem, index_id, n)
                    for i, n in enumerate(counts)]
        if tag == TAG_subroutine_type:
            params = []
            for c in d.children:
                if c.tag == TAG_formal_parameter:
                    params.append(Param(c.name, ref(c)))
                elif c.tag == TAG_unspecified_parameters:
                    params.append(Param("", 0))
            return [FuncProto(ref(d), params)]
        raise DwarfError(f"{where}: unexpected tag {tag:#x}")  # pragma: no cover

    def _count(self, sub: DIE) -> int:
        c = sub.get_int(AT_count)
        if c is None:
            ub = sub.get_int(AT_upper_bound)
            lb = sub.get_int(AT_lower_bound, 0) or 0
            c = 0 if ub is None else ub - lb + 1
        if not 0 <= c < 1 << 32:
            raise DwarfError(f"{self.name}: array dimension at .debug_info+{sub.offset:#x} "
                             f"has {c} elements")
        return c

    def _enum_signed(self, d: DIE) -> bool:
        t = self._ref(d)
        depth = 0
        while t is not None and t.tag != TAG_base_type and depth < MAX_TYPE_DEPTH:
            t = self._ref(t)
            depth += 1
        if t is None or t.tag != TAG_base_type:
            return False
        return t.get_int(AT_encoding) in (ATE_signed, ATE_signed_char)

    def _member(self, m: DIE, ref: Any, parent_size: int, where: str) -> Member:
        bit_size = m.get_int(AT_bit_size, 0) or 0
        dbo = m.get_int(AT_data_bit_offset)
        loc = m.attrs.get(AT_data_member_location)
        byte_off = 0
        if isinstance(loc, int) and not isinstance(loc, bool):
            byte_off = loc
        elif isinstance(loc, bytes):
            byte_off = _eval_member_location(loc, where)
        if dbo is not None:
            bit_off = dbo
        elif bit_size and m.get_int(AT_bit_offset) is not None:
            # DWARF 2/3 bitfields: bit_offset counts from the storage unit's MSB
            storage = m.get_int(AT_byte_size)
            if storage is None:
                storage = self._size_of(self._ref(m))
            bit_off = byte_off * 8 + storage * 8 - (m.get_int(AT_bit_offset, 0) or 0) - bit_size
        else:
            bit_off = byte_off * 8
        if bit_off < 0 or (parent_size and bit_off > parent_size * 8):
            raise DwarfError(f"{where}: member {m.name!r} at bit {bit_off} lies outside its "
                             f"{parent_size}-byte parent")
        return Member(m.name, ref(m), bit_off, bit_size)

    def _size_of(self, t: DIE | None) -> int:
        depth = 0
        while t is not None and depth < MAX_TYPE_DEPTH:
            s = t.get_int(AT_byte_size)
            if s is not None:
                return s
            t = self._ref(t)
            depth += 1
        return 0

    # -------------------------------------------------------------- variables
    def local_types(self, function: str, *, params: bool = True) -> list[int]:
        """BTF ids (in :meth:`to_btf`) of the variables (and, with ``params``, the
        parameters) declared in the subprogram ``function``, inlined callees and nested
        blocks included; parameters of inlined callees count as variables (a callee's
        ``struct event *e`` is a pointer the caller writes through)."""
        self.to_btf()
        out: list[int] = []
        for d in self.dies.values():
            if d.tag != TAG_subprogram or d.name != function:
                continue
            stack = list(d.children)
            while stack:
                c = stack.pop()
                if c.tag == TAG_variable or (c.tag == TAG_formal_parameter and
                                             (params or c.parent is not d)):
                    t = self._ref(c)
                    if t is None:
                        o = self._ref(c, AT_abstract_origin)
                        t = self._ref(o) if o is not None else None
                    if t is not None and t.offset in self._btf_ids:
                        out.append(self._btf_ids[t.offset])
                stack.extend(c.children)
                if c.tag == TAG_inlined_subroutine:
                    origin = self._ref(c, AT_abstract_origin)
                    if origin is not None:
                        stack.extend(origin.children)
        return out

    # -------------------------------------------------------------- .debug_line
    def lines(self) -> list[LineRow]:
        """Every row of every unit's line table (DWARF 4 and 5 headers)."""
        data = self.sections.data.get(".debug_line")
        if not data:
            return []
        rows: list[LineRow] = []
        for unit in self.units:
            if unit.root is None:
                continue
            off = unit.root.get_int(AT_stmt_list)
            if off is None:
                continue
            comp_dir = unit.root.attrs.get(AT_comp_dir, "")
            rows.extend(self._line_program(data, off, comp_dir if isinstance(comp_dir, str)
                                           else ""))
        return rows

    def _line_program(self, data: bytes, off: int, comp_dir: str) -> list[LineRow]:
        r = _Reader(data, ".debug_line", off, e=self._e)
        length = r.u(4)
        osize = 4
        if length == 0xFFFFFFFF:
            length = r.u(8)
            osize = 8
        end = r.pos + length
        if end > len(data):
            raise r.fail(f"line program of {length} bytes runs past the end of the section")
        r.end = end
        version = r.u(2)
        if version not in (2, 3, 4, 5):
            raise r.fail(f"unsupported line table version {version}")
        asize = 8
        if version >= 5:
            asize = r.u8()
            r.u8()  # segment selector size
        hlen = r.u(osize)
        prog = r.pos + hlen
        min_inst = r.u8()
        if version >= 4:
            r.u8()  # max ops per instruction
        default_is_stmt = r.u8()
        line_base = r.u8()
        line_base -= 256 if line_base >= 128 else 0
        line_range = r.u8()
        opcode_base = r.u8()
        if line_range == 0:
            raise r.fail("line_range is 0")
        std_lens = [r.u8() for _ in range(max(opcode_base - 1, 0))]
        files: list[str] = []
        lstrs = self.sections.data.get(".debug_line_str", b"")
        strs = self.sections.data.get(".debug_str", b"")
        if version >= 5:
            dirs = self._entry_list(r, osize, strs, lstrs)
            dnames = [e.get(1, "") for e in dirs]
            for e in self._entry_list(r, osize, strs, lstrs):
                n = str(e.get(1, ""))
                di = e.get(2, 0)
                dn = dnames[di] if isinstance(di, int) and 0 <= di < len(dnames) else ""
                files.append(n if n.startswith("/") or not dn else f"{dn}/{n}")
        else:
            incs = [comp_dir]
            while True:
                s = r.cstr()
                if not s:
                    break
                incs.append(s.decode("utf-8", "replace"))
            files.append("")  # DWARF <= 4 file indices start at 1
            while True:
                s = r.cstr()
                if not s:
                    break
                di = r.uleb()
                r.uleb()
                r.uleb()
                n = s.decode("utf-8", "replace")
                dn = incs[di] if di < len(incs) else ""
                files.append(n if n.startswith("/") or not dn else f"{dn}/{n}")
        r.pos = prog
        rows: list[LineRow] = []
        targets = self.sections.targets.get(".debug_line", {})

        def fname(i: int) -> str:
            return files[i] if 0 <= i < len(files) else f"<file {i}>"

        addr, file, line, col, section = 0, 1, 1, 0, ""
        del default_is_stmt
        while r.pos < r.end:
            op = r.u8()
            if op >= opcode_base:
                adj = op - opcode_base
                addr += (adj // line_range) * min_inst
                line += line_base + adj % line_range
                rows.append(LineRow(section, addr, fname(file), line, col))
            elif op == 0:
                elen = r.uleb()
                sub_end = r.pos + elen
                if elen == 0 or sub_end > r.end:
                    raise r.fail(f"extended opcode of length {elen}")
                sub = r.u8()
                if sub == 1:  # end_sequence
                    addr, file, line, col, section = 0, 1, 1, 0, ""
                elif sub == 2:  # set_address
                    section = targets.get(r.pos, section)
                    addr = r.u(elen - 1) if elen - 1 in (4, 8) else r.u(asize)
                r.pos = sub_end
            elif op == 1:  # copy
                rows.append(LineRow(section, addr, fname(file), line, col))
            elif op == 2:
                addr += r.uleb() * min_inst
            elif op == 3:
                line += r.sleb()
            elif op == 4:
                file = r.uleb()
            elif op == 5:
                col = r.uleb()
            elif op == 8:
                addr += ((255 - opcode_base) // line_range) * min_inst
            elif op == 9:
                addr += r.u(2)
            elif op in (6, 7, 10, 11):
                pass
            elif op == 12:
                r.uleb()
            else:
                for _ in range(std_lens[op - 1] if op - 1 < len(std_lens) else 0):
                    r.uleb()
        return rows

    def _entry_list(self, r: _Reader, osize: int, strs: bytes,
                    lstrs: bytes) -> list[dict[int, Any]]:
        nfmt = r.u8()
        fmt = [(r.uleb(), r.uleb()) for _ in range(nfmt)]
        count = r.uleb()
        if count > r.end - r.pos:
            raise r.fail(f"{count} line table entries cannot fit in the header")
        out: list[dict[int, Any]] = []
        for _ in range(count):
            e: dict[int, Any] = {}
            for ctype, form in fmt:
                if form == FORM_line_strp:
                    e[ctype] = _cstr_at(lstrs, r.u(osize), ".debug_line_str")
                elif form == FORM_strp:
                    e[ctype] = _cstr_at(strs, r.u(osize), ".debug_str")
                elif form == FORM_string:
                    e[ctype] = r.cstr().decode("utf-8", "replace")
                elif form == FORM_udata:
                    e[ctype] = r.uleb()
                elif form in _FIXED:
                    e[ctype] = r.u(_FIXED[form])
                elif form == FORM_data16:
                    e[ctype] = r.take(16)
                elif form == FORM_block:
                    e[ctype] = r.take(r.uleb())
                else:
                    raise r.fail(f"unsupported form {form:#x} in a line table entry")
            out.append(e)
        return out


def _eval_member_location(expr: bytes, where: str) -> int:
    """DWARF 2/3 member locations: ``DW_OP_plus_uconst N`` (or ``DW_OP_constu N``)."""
    r = _Reader(expr, "member location")
    op = r.u8()
    if op in (DW_OP_plus_uconst, DW_OP_constu):
        return r.uleb()
    raise DwarfError(f"{where}: member location expression with opcode {op:#x} is not a "
                     "constant offset")
