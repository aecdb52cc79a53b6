"""A small, strict ELF64 reader for BPF objects and for the binaries we probe.

Two very different users share it: the BPF object loader (sections, symbols and
relocations of ``clang -target bpf`` objects, a few KB) and uprobes/USDT/symbolization
(symbol tables and notes of binaries and libraries of tens of MB).  So the reader

* maps files with :mod:`mmap` and copies out only what a caller asks for;
* parses symbol tables column-wise with :mod:`array` (C speed) and creates the
  :class:`Symbol` objects in one pass, caching the result;
* treats the input as hostile: every offset and size is checked against the file
  size before use, so malformed input raises :class:`~bpfkit.errors.ElfError` and
  never ``IndexError``/``struct.error``/``UnicodeDecodeError``/``MemoryError`` or a hang.

Only ELFCLASS64 is supported, in both byte orders.  Strings (section, symbol and note
names) are decoded as UTF-8 with ``surrogateescape`` so that any byte string
round-trips through ``name.encode("utf-8", "surrogateescape")``.
"""

from __future__ import annotations

import gc
import mmap
import os
import stat
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from types import TracebackType
from typing import IO, Union

from bpfkit.errors import ElfError

__all__ = [
    "ElfFile", "Section", "Segment", "Symbol", "Relocation", "Note", "ElfError",
]

# --- constants --------------------------------------------------------------------

ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2

ET_NONE = 0
ET_REL = 1
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4

EM_X86_64 = 62
EM_AARCH64 = 183
EM_BPF = 247

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_HASH = 5
SHT_DYNAMIC = 6
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_REL = 9
SHT_SHLIB = 10
SHT_DYNSYM = 11
SHT_INIT_ARRAY = 14
SHT_FINI_ARRAY = 15
SHT_PREINIT_ARRAY = 16
SHT_GROUP = 17
SHT_SYMTAB_SHNDX = 18
SHT_LLVM_ADDRSIG = 0x6FFF4C03
SHT_GNU_HASH = 0x6FFFFFF6
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_GNU_VERSYM = 0x6FFFFFFF

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_INFO_LINK = 0x40
SHF_LINK_ORDER = 0x80
SHF_OS_NONCONFORMING = 0x100
SHF_GROUP = 0x200
SHF_TLS = 0x400
SHF_COMPRESSED = 0x800
SHF_EXCLUDE = 0x80000000

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
STT_COMMON = 5
STT_TLS = 6
STT_GNU_IFUNC = 10

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STB_GNU_UNIQUE = 10

STV_DEFAULT = 0
STV_INTERNAL = 1
STV_HIDDEN = 2
STV_PROTECTED = 3

PT_NULL = 0
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_NOTE = 4
PT_SHLIB = 5
PT_PHDR = 6
PT_TLS = 7
PT_GNU_EH_FRAME = 0x6474E550
PT_GNU_STACK = 0x6474E551
PT_GNU_RELRO = 0x6474E552
PT_GNU_PROPERTY = 0x6474E553

PF_X = 0x1
PF_W = 0x2
PF_R = 0x4

PN_XNUM = 0xFFFF

NT_GNU_BUILD_ID = 3
NT_STAPSDT = 3

R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10

_EHDR_SIZE = 64
_SHDR_SIZE = 64
_PHDR_SIZE = 56
_SYM_SIZE = 24
_REL_SIZE = 16
_RELA_SIZE = 24

# Lookup tables to split st_info/st_other for a whole table with bytes.translate.
_BIND_OF = bytes(i >> 4 for i in range(256))
_TYPE_OF = bytes(i & 0xF for i in range(256))
_VIS_OF = bytes(i & 0x3 for i in range(256))

# The column-wise symbol parser relies on these machine sizes; every platform CPython
# runs on has them, but fall back to struct if one ever does not.
_ARRAY_OK = (array("H").itemsize, array("I").itemsize, array("Q").itemsize,
             array("q").itemsize) == (2, 4, 8, 8)

# find_symbol's preference among same-named definitions.
_BIND_RANK = {STB_GLOBAL: 0, STB_GNU_UNIQUE: 0, STB_WEAK: 1, STB_LOCAL: 2}

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# --- records ----------------------------------------------------------------------

@dataclass(slots=True)
class Section:
    """One section header.

    ``data()`` returns the section's bytes from the file.  For ``SHT_NOBITS``
    (``.bss``) and ``SHT_NULL`` it returns ``b""``: such sections occupy no file
    space, so callers needing the zero-filled contents use ``size``.
    """

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int
    _elf: ElfFile | None = field(default=None, repr=False, compare=False)

    def data(self) -> bytes:
        """The raw (possibly SHF_COMPRESSED) bytes; ``b""`` for NOBITS/NULL sections."""
        if self.type in (SHT_NOBITS, SHT_NULL):
            return b""
        if self._elf is None:
            raise ElfError(f"section {self.name!r} is not attached to an ELF file")
        return self._elf._slice(self.offset, self.size, f"section {self.name!r}")


@dataclass(slots=True)
class Segment:
    """One program header (``PT_*``); ``data()`` returns its ``filesz`` file bytes."""

    index: int
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    flags: int
    align: int
    _elf: ElfFile | None = field(default=None, repr=False, compare=False)

    def data(self) -> bytes:
        if self._elf is None:
            raise ElfError(f"segment {self.index} is not attached to an ELF file")
        return self._elf._slice(self.offset, self.filesz, f"segment {self.index}")


@dataclass(slots=True)
class Symbol:
    """One ``Elf64_Sym``.

    ``shndx`` is resolved through ``SHT_SYMTAB_SHNDX`` when it is ``SHN_XINDEX``.
    ``section_name`` is the name of the section ``shndx`` refers to, or ``""`` for
    ``SHN_UNDEF``, ``SHN_ABS``, ``SHN_COMMON`` and other non-section indices.
    """

    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int
    section_name: str

    @property
    def defined(self) -> bool:
        return self.shndx != SHN_UNDEF


@dataclass(slots=True)
class Relocation:
    """One ``Elf64_Rel``/``Elf64_Rela`` entry.

    For ``SHT_REL`` the addend is implicit in the relocated bytes and ``addend`` is 0.
    ``symbol`` is the entry of the linked symbol table (index 0 is the null symbol).
    """

    offset: int
    type: int
    symbol_index: int
    addend: int
    symbol: Symbol


@dataclass(slots=True)
class Note:
    """One ELF note: ``name`` without its NUL terminator, raw ``desc`` bytes."""

    name: str
    type: int
    desc: bytes
    section: str = ""


_NULL_SYMBOL = Symbol(0, "", 0, 0, STB_LOCAL, STT_NOTYPE, STV_DEFAULT, SHN_UNDEF, "")


# --- the reader -------------------------------------------------------------------

class ElfFile:
    """A parsed ELF64 file.

    Build one from bytes (``ElfFile(data)``) or map a file with ``ElfFile.open(path)``,
    preferably as a context manager.  Headers are parsed and validated eagerly;
    symbol tables, relocations and notes lazily, on first use, and cached.
    """

    def __init__(self, data: Buffer, *, name: str = "<bytes>") -> None:
        self.name = name
        self._mmap: mmap.mmap | None = None
        self._file: IO[bytes] | None = None
        self._closed = False
        if isinstance(data, mmap.mmap):
            self._data: Buffer = data
            self._size = len(data)
        elif isinstance(data, bytes):
            self._data = data
            self._size = len(data)
        else:
            try:
                mv = memoryview(data)
                if mv.ndim != 1 or mv.itemsize != 1 or mv.format != "B":
                    mv = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
            except TypeError as e:
                raise ElfError(f"{name}: cannot read ELF data from {type(data).__name__}: {e}")
            self._data = mv
            self._size = mv.nbytes
        self._symcache: dict[int, list[Symbol]] = {}
        self._maps: dict[str | None, dict[str, list[Symbol]]] = {}
        self._by_name: dict[str, Section] | None = None
        self._parse_headers()

    # -- construction helpers --

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ElfFile:
        """Map ``path`` read-only; ``close()`` (or ``with``) releases the mapping."""
        fname = os.fspath(path)
        try:
            # O_NONBLOCK: a FIFO must be refused, not waited on for a writer
            fd = os.open(fname, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise ElfError(f"cannot open {fname}: {e.strerror}") from None
        f = os.fdopen(fd, "rb")  # closed by close()
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ElfError(f"{fname}: not a regular file, so not an ELF object")
            size = st.st_size
            if size == 0:
                raise ElfError(f"{fname}: empty file, not an ELF object")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            f.close()
            raise
        try:
            self = cls(mm, name=fname)
        except BaseException:
            mm.close()
            f.close()
            raise
        self._mmap = mm
        self._file = f
        return self

    def close(self) -> None:
        """Release the mapping; cached results stay usable, new reads raise ElfError."""
        if self._closed:
            return
        self._closed = True
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None
        f = self._file
        self._file = None
        if f is not None:
            f.close()
        self._data = b""

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<ElfFile {self.name} {self.byteorder} type={self.type} "
                f"machine={self.machine} sections={len(self.sections)}>")

    # -- raw access --

    def _slice(self, offset: int, size: int, what: str) -> bytes:
        if self._closed:
            raise ElfError(f"{self.name}: file is closed")
        if offset < 0 or size < 0 or offset + size > self._size:
            raise ElfError(f"{self.name}: {what} (offset {offset:#x}, size {size:#x}) "
                           f"extends past the end of the file ({self._size:#x} bytes)")
        return bytes(self._data[offset:offset + size])

    def _unpack(self, fmt: str, offset: int, what: str) -> tuple[int, ...]:
        s = struct.Struct(self._e + fmt)
        if offset < 0 or offset + s.size > self._size:
            raise ElfError(f"{self.name}: truncated {what} at offset {offset:#x}")
        return s.unpack_from(self._data, offset)

    def _parse_headers(self) -> None:
        if self._size < 16:
            raise ElfError(f"{self.name}: too short for an ELF header ({self._size} bytes)")
        ident = bytes(self._data[0:16])
        if ident[:4] != b"\x7fELF":
            raise ElfError(f"{self.name}: not an ELF file (bad magic {ident[:4]!r})")
        cls, enc = ident[4], ident[5]
        if cls == ELFCLASS32:
            raise ElfError(f"{self.name}: 32-bit ELF (ELFCLASS32) is not supported, only ELF64")
        if cls != ELFCLASS64:
            raise ElfError(f"{self.name}: invalid ELF class {cls}")
        if enc == ELFDATA2LSB:
            self.byteorder = "little"
            self._e = "<"
        elif enc == ELFDATA2MSB:
            self.byteorder = "big"
            self._e = ">"
        else:
            raise ElfError(f"{self.name}: invalid ELF data encoding {enc}")
        self._swap = self.byteorder != sys.byteorder
        self.osabi = ident[7]
        (self.type, self.machine, self.version, self.entry, phoff, shoff, self.flags,
         _ehsize, phentsize, phnum, shentsize, shnum, shstrndx) = self._unpack(
            "HHIQQQIHHHHHH", 16, "ELF header")

        # Section headers.  e_shnum == 0 with a table present means "the count is in
        # section 0's sh_size"; e_shstrndx == SHN_XINDEX means "in its sh_link".
        self.sections: list[Section] = []
        raw: list[tuple[int, ...]] = []
        if shoff:
            if shentsize < _SHDR_SIZE:
                raise ElfError(f"{self.name}: e_shentsize {shentsize} is smaller than "
                               f"an ELF64 section header ({_SHDR_SIZE})")
            first = self._unpack("IIQQQQIIQQ", shoff, "section header 0")
            if shnum == 0:
                shnum = first[5]
            if shstrndx == SHN_XINDEX:
                shstrndx = first[6]
            if phnum == PN_XNUM:
                phnum = first[7]
            if shnum > (self._size - shoff) // shentsize:
                raise ElfError(f"{self.name}: {shnum} section headers of {shentsize} bytes "
                               f"at offset {shoff:#x} do not fit in the file")
            hdr = struct.Struct(self._e + "IIQQQQIIQQ")
            raw = [hdr.unpack_from(self._data, shoff + i * shentsize) for i in range(shnum)]
        elif shnum:
            raise ElfError(f"{self.name}: e_shnum is {shnum} but e_shoff is 0")

        names: list[str] = [""] * len(raw)
        if raw and shstrndx != SHN_UNDEF:
            if shstrndx >= len(raw):
                raise ElfError(f"{self.name}: e_shstrndx {shstrndx} out of range "
                               f"({len(raw)} sections)")
            st = raw[shstrndx]
            if st[1] == SHT_NOBITS:
                raise ElfError(f"{self.name}: section name table has no file data")
            strtab = self._slice(st[4], st[5], "section name table")
            names = [self._string(strtab, r[0], "section name") for r in raw]
        for i, (r, nm) in enumerate(zip(raw, names, strict=True)):
            self.sections.append(Section(i, nm, r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                                         r[8], r[9], self))

        # Program headers.
        self.segments: list[Segment] = []
        if phoff and phnum:
            if phentsize < _PHDR_SIZE:
                raise ElfError(f"{self.name}: e_phentsize {phentsize} is smaller than "
                               f"an ELF64 program header ({_PHDR_SIZE})")
            if phoff > self._size or phnum > (self._size - phoff) // phentsize:
                raise ElfError(f"{self.name}: {phnum} program headers of {phentsize} bytes "
                               f"at offset {phoff:#x} do not fit in the file")
            ph = struct.Struct(self._e + "IIQQQQQQ")
            for i in range(phnum):
                p_type, p_flags, off, vaddr, paddr, filesz, memsz, align = ph.unpack_from(
                    self._data, phoff + i * phentsize)
                self.segments.append(Segment(i, p_type, off, vaddr, paddr, filesz, memsz,
                                             p_flags, align, self))

    def _string(self, table: bytes, offset: int, what: str) -> str:
        if offset >= len(table):
            if offset == 0:  # an empty table is fine for the empty name
                return ""
            raise ElfError(f"{self.name}: {what} offset {offset:#x} is past the end of "
                           f"its string table ({len(table)} bytes)")
        end = table.find(b"\0", offset)
        if end < 0:
            end = len(table)
        return _decode(table[offset:end])

    # -- sections --

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or None."""
        if self._by_name is None:
            by: dict[str, Section] = {}
            for s in self.sections:
                by.setdefault(s.name, s)
            self._by_name = by
        return self._by_name.get(name)

    def _section_arg(self, section: Section | str | int) -> Section:
        if isinstance(section, Section):
            return section
        if isinstance(section, int):
            if not 0 <= section < len(self.sections):
                raise ElfError(f"{self.name}: no section with index {section}")
            return self.sections[section]
        found = self.section(section)
        if found is None:
            raise ElfError(f"{self.name}: no section named {section!r}")
        return found

    def _linked(self, sec: Section, what: str) -> Section:
        if not 0 < sec.link < len(self.sections):
            raise ElfError(f"{self.name}: sh_link {sec.link} of {what} {sec.name!r} is "
                           f"out of range ({len(self.sections)} sections)")
        return self.sections[sec.link]

    # -- symbols --

    def _symtab_section(self, table: str) -> Section | None:
        if table == ".symtab":
            return next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        if table == ".dynsym":
            return next((s for s in self.sections if s.type == SHT_DYNSYM), None)
        sec = self.section(table)
        if sec is not None and sec.type not in (SHT_SYMTAB, SHT_DYNSYM):
            raise ElfError(f"{self.name}: section {table!r} is not a symbol table")
        return sec

    def symbols(self, table: str = ".symtab") -> list[Symbol]:
        """All entries of a symbol table, null symbol (index 0) included.

        ``table`` is ``".symtab"`` (the SHT_SYMTAB section), ``".dynsym"`` (the
        SHT_DYNSYM section) or the name of another symbol-table section.  A missing
        table gives ``[]`` (stripped binaries have only ``.dynsym``).  Parsed once and
        cached; the returned list is a fresh copy but the Symbols are shared.
        """
        sec = self._symtab_section(table)
        if sec is None:
            return []
        return list(self._symbols_of(sec))

    def dynamic_symbols(self) -> list[Symbol]:
        return self.symbols(".dynsym")

    def _symbols_of(self, sec: Section) -> list[Symbol]:
        cached = self._symcache.get(sec.index)
        if cached is None:
            cached = self._parse_symbols(sec)
            self._symcache[sec.index] = cached
        return cached

    def _parse_symbols(self, sec: Section) -> list[Symbol]:
        if sec.type not in (SHT_SYMTAB, SHT_DYNSYM):
            raise ElfError(f"{self.name}: section {sec.name!r} is not a symbol table")
        if sec.entsize not in (0, _SYM_SIZE):
            raise ElfError(f"{self.name}: symbol table {sec.name!r} has entry size "
                           f"{sec.entsize}, expected {_SYM_SIZE}")
        n = sec.size // _SYM_SIZE
        tab = sec.data()[:n * _SYM_SIZE]  # sec.data() bounds size by the file
        n = len(tab) // _SYM_SIZE
        if n == 0:
            return []
        strsec = self._linked(sec, "symbol table")
        if strsec.type != SHT_STRTAB:
            raise ElfError(f"{self.name}: symbol table {sec.name!r} links to section "
                           f"{strsec.name!r}, which is not a string table")
        strtab = strsec.data()

        offs, values, sizes, shndx = self._sym_columns(tab, n)
        binds = list(tab[4::_SYM_SIZE].translate(_BIND_OF))
        types = list(tab[4::_SYM_SIZE].translate(_TYPE_OF))
        vis = list(tab[5::_SYM_SIZE].translate(_VIS_OF))
        names = self._names(strtab, offs, sec.name)

        if SHN_XINDEX in shndx:
            shndx = self._extended_shndx(sec, shndx)
        secnames = {s.index: s.name for s in self.sections}
        for special in (SHN_UNDEF, SHN_ABS, SHN_COMMON):
            secnames[special] = ""
        snames = list(map(secnames.get, shndx, repeat("")))

        # Creating tens of thousands of objects triggers needless GC passes.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return list(map(Symbol, range(n), names, values, sizes, binds, types, vis,
                            shndx, snames))
        finally:
            if enabled:
                gc.enable()

    def _sym_columns(self, tab: bytes, n: int
                     ) -> tuple[list[int], list[int], list[int], list[int]]:
        """st_name, st_value, st_size, st_shndx of every entry, at C speed."""
        if _ARRAY_OK:
            q, w, h = array("Q"), array("I"), array("H")
            q.frombytes(tab)
            w.frombytes(tab)
            h.frombytes(tab)
            if self._swap:
                q.byteswap()
                w.byteswap()
                h.byteswap()
            return w[0::6].tolist(), q[1::3].tolist(), q[2::3].tolist(), h[3::12].tolist()
        e = self._e
        qt = struct.unpack(f"{e}{n * 3}Q", tab)
        return (list(struct.unpack(f"{e}{n * 6}I", tab)[0::6]), list(qt[1::3]),
                list(qt[2::3]), list(struct.unpack(f"{e}{n * 12}H", tab)[3::12]))

    def _names(self, strtab: bytes, offs: list[int], what: str) -> list[str]:
        if not offs:
            return []
        top = max(offs)
        if top >= len(strtab) and top != 0:
            raise ElfError(f"{self.name}: a name in {what!r} has string offset {top:#x} past "
                           f"the end of its string table ({len(strtab)} bytes)")
        if strtab.isascii():
            s = strtab.decode("ascii") + "\0"  # the terminator makes find() never fail
            ends = map(s.find, repeat("\0"), offs)
            return list(map(s.__getitem__, map(slice, offs, ends)))
        b = strtab + b"\0"
        ends = map(b.find, repeat(b"\0"), offs)
        return [_decode(x) for x in map(b.__getitem__, map(slice, offs, ends))]

    def _extended_shndx(self, sec: Section, shndx: list[int]) -> list[int]:
        ext = next((s for s in self.sections
                    if s.type == SHT_SYMTAB_SHNDX and s.link == sec.index), None)
        if ext is None:
            raise ElfError(f"{self.name}: {sec.name!r} uses SHN_XINDEX but has no "
                           f"SHT_SYMTAB_SHNDX section")
        raw = ext.data()
        n = len(raw) // 4
        if n < len(shndx):
            raise ElfError(f"{self.name}: SHT_SYMTAB_SHNDX section {ext.name!r} is shorter "
                           f"than symbol table {sec.name!r}")
        words = struct.unpack(f"{self._e}{n}I", raw[:n * 4])
        return [words[i] if v == SHN_XINDEX else v for i, v in enumerate(shndx)]

    def symbol_map(self, table: str | None = None) -> dict[str, list[Symbol]]:
        """Symbols by name (unnamed ones left out), cached.

        ``table=None`` merges ``.symtab`` then ``.dynsym`` (so a name's list has the
        ``.symtab`` entries first); otherwise only the named table.
        """
        m = self._maps.get(table)
        if m is None:
            tables = [".symtab", ".dynsym"] if table is None else [table]
            m = {}
            for t in tables:
                sec = self._symtab_section(t)
                if sec is None:
                    continue
                for sym in self._symbols_of(sec):
                    if sym.name:
                        lst = m.get(sym.name)
                        if lst is None:
                            m[sym.name] = [sym]
                        else:
                            lst.append(sym)
            self._maps[table] = m
        return m

    def find_symbol(self, name: str) -> Symbol | None:
        """The best symbol called ``name``: a defined one (global, then weak, then
        local; ``.symtab`` before ``.dynsym``), else an undefined reference, else None."""
        cands = self.symbol_map().get(name)
        if not cands:
            return None
        return min(cands, key=lambda s: (s.shndx == SHN_UNDEF, _BIND_RANK.get(s.bind, 3)))

    # -- relocations --

    def relocation_sections(self) -> dict[int, Section]:
        """SHT_REL/SHT_RELA sections keyed by the index of the section they patch
        (``sh_info``); dynamic relocation sections with ``sh_info == 0`` are left out,
        and if two sections patch the same target the first one wins."""
        out: dict[int, Section] = {}
        for s in self.sections:
            if s.type in (SHT_REL, SHT_RELA) and s.info != 0:
                out.setdefault(s.info, s)
        return out

    def relocations(self, section: Section | str | int) -> list[Relocation]:
        """Entries of one SHT_REL/SHT_RELA section (given as Section, name or index)."""
        sec = self._section_arg(section)
        if sec.type == SHT_RELA:
            esize = _RELA_SIZE
        elif sec.type == SHT_REL:
            esize = _REL_SIZE
        else:
            raise ElfError(f"{self.name}: section {sec.name!r} is not a relocation section")
        if sec.entsize not in (0, esize):
            raise ElfError(f"{self.name}: relocation section {sec.name!r} has entry size "
                           f"{sec.entsize}, expected {esize}")
        raw = sec.data()
        n = len(raw) // esize
        raw = raw[:n * esize]
        if n == 0:
            return []
        if sec.link == 0:
            syms = [_NULL_SYMBOL]
        else:
            symsec = self._linked(sec, "relocation section")
            if symsec.type not in (SHT_SYMTAB, SHT_DYNSYM):
                raise ElfError(f"{self.name}: relocation section {sec.name!r} links to "
                               f"{symsec.name!r}, which is not a symbol table")
            syms = self._symbols_of(symsec) or [_NULL_SYMBOL]
        per = esize // 8
        if _ARRAY_OK:
            q, sq = array("Q"), array("q")
            q.frombytes(raw)
            if self._swap:
                q.byteswap()
            offsets, infos = q[0::per].tolist(), q[1::per].tolist()
            if per == 3:
                sq.frombytes(raw)
                if self._swap:
                    sq.byteswap()
                addends = sq[2::3].tolist()
            else:
                addends = [0] * n
        else:
            qt = struct.unpack(f"{self._e}{n * per}Q", raw)
            offsets, infos = list(qt[0::per]), list(qt[1::per])
            addends = (list(struct.unpack(f"{self._e}{n * 3}q", raw)[2::3]) if per == 3
                       else [0] * n)
        nsyms = len(syms)
        out = []
        for off, info, add in zip(offsets, infos, addends, strict=True):
            si = info >> 32
            if si >= nsyms:
                raise ElfError(f"{self.name}: relocation at {off:#x} in {sec.name!r} refers "
                               f"to symbol {si}, but the symbol table has {nsyms}")
            out.append(Relocation(off, info & 0xFFFFFFFF, si, add, syms[si]))
        return out

    # -- notes --

    def notes(self, section_name: str | None = None) -> list[Note]:
        """Notes of every SHT_NOTE section, or of ``section_name`` only ([] if absent).

        Without section headers (a fully stripped file) the PT_NOTE segments are read.
        Entries are 4-byte aligned, except in sections/segments aligned to 8 (such as
        ``.note.gnu.property``), which use 8-byte alignment as the GNU toolchain does.
        """
        out: list[Note] = []
        if section_name is not None:
            sec = self.section(section_name)
            if sec is None:
                return []
            if sec.type != SHT_NOTE:
                raise ElfError(f"{self.name}: section {section_name!r} is not a note section")
            out.extend(self._parse_notes(sec.data(), sec.addralign, sec.name))
            return out
        if self.sections:
            for sec in self.sections:
                if sec.type == SHT_NOTE:
                    out.extend(self._parse_notes(sec.data(), sec.addralign, sec.name))
        else:
            for seg in self.segments:
                if seg.type == PT_NOTE:
                    out.extend(self._parse_notes(seg.data(), seg.align, ""))
        return out

    def _parse_notes(self, data: bytes, align: int, where: str) -> Iterator[Note]:
        a = 8 if align == 8 else 4
        hdr = struct.Struct(self._e + "III")
        off, end = 0, len(data)
        while off < end:
            if end - off < 12:
                if any(data[off:]):
                    raise ElfError(f"{self.name}: truncated note header in {where!r}")
                return
            namesz, descsz, ntype = hdr.unpack_from(data, off)
            name_end = off + 12 + namesz
            desc_off = (name_end + a - 1) & ~(a - 1)
            desc_end = desc_off + descsz
            if name_end > end or desc_end > end:
                raise ElfError(f"{self.name}: note at offset {off:#x} of {where!r} "
                               f"(namesz {namesz}, descsz {descsz}) overruns its section")
            name = _decode(data[off + 12:name_end].rstrip(b"\0"))
            yield Note(name, ntype, data[desc_off:desc_end], where)
            off = (desc_end + a - 1) & ~(a - 1)

    def build_id(self) -> str | None:
        """The GNU build ID as lowercase hex (how debuginfod and perf name it), or None."""
        for src in (".note.gnu.build-id", None):
            for n in self.notes(src):
                if n.name == "GNU" and n.type == NT_GNU_BUILD_ID and n.desc:
                    return n.desc.hex()
        return None

    def debuglink(self) -> tuple[str, int] | None:
        """``(file name, CRC32)`` from ``.gnu_debuglink``, or None without one."""
        sec = self.section(".gnu_debuglink")
        if sec is None or sec.type == SHT_NOBITS:
            return None
        data = sec.data()
        nul = data.find(b"\0")
        if nul <= 0:
            raise ElfError(f"{self.name}: malformed .gnu_debuglink (no file name)")
        crc_off = (nul + 1 + 3) & ~3
        if crc_off + 4 > len(data):
            raise ElfError(f"{self.name}: malformed .gnu_debuglink (no CRC)")
        (crc,) = struct.unpack_from(self._e + "I", data, crc_off)
        return _decode(data[:nul]), crc

    # -- addresses --

    def vaddr_to_offset(self, vaddr: int) -> int:
        """File offset of virtual address ``vaddr`` (uprobes attach by file offset).

        Raises ElfError if no PT_LOAD segment maps ``vaddr`` from the file.
        """
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise ElfError(f"{self.name}: address {vaddr:#x} is not in any PT_LOAD segment's "
                       f"file-backed range")

    def offset_to_vaddr(self, offset: int) -> int:
        """Virtual address at which file offset ``offset`` is loaded."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.offset <= offset < seg.offset + seg.filesz:
                return offset - seg.offset + seg.vaddr
        raise ElfError(f"{self.name}: file offset {offset:#x} is not in any PT_LOAD segment")
