"""Parsing, querying and re-encoding raw BTF.

A :class:`Spec` is a list of BTF types addressed by id.  Parsing is split in two so
the kernel's ~126k-type vmlinux BTF costs little: one pass over the blob records the
byte offset of every type (an ``array('I')``) and maps each *string offset* of a
type name to its id(s); a type is decoded into a :mod:`bpfkit.btf.types` object only
when asked for, then cached.  Name look-ups search the string section for
``name\\0`` (with C-speed ``bytes.find``) and map every hit through that dict, which is
exact even when a compiler shares string suffixes.

Re-encoding keeps the original string section as a prefix (new names are appended),
so string offsets held elsewhere (``.BTF.ext`` line info) stay valid after a loader
rewrites types, and types never decoded are copied byte for byte.
"""

from __future__ import annotations

import copy as _copy
import struct
from array import array
from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias, TypeVar, overload

from ..errors import BTFError
from . import marshal
from .kernel import KernelBTF, elf_section
from .marshal import BTF_MAGIC, BTF_VERSION, HEADER_LEN
from .types import (
    BTF_KIND_ARRAY,
    BTF_KIND_CONST,
    BTF_KIND_DATASEC,
    BTF_KIND_DECL_TAG,
    BTF_KIND_ENUM,
    BTF_KIND_ENUM64,
    BTF_KIND_FLOAT,
    BTF_KIND_FUNC,
    BTF_KIND_FUNC_PROTO,
    BTF_KIND_FWD,
    BTF_KIND_INT,
    BTF_KIND_PTR,
    BTF_KIND_RESTRICT,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPE_TAG,
    BTF_KIND_TYPEDEF,
    BTF_KIND_UNION,
    BTF_KIND_VAR,
    BTF_KIND_VOLATILE,
    KIND_NAMES,
    Array,
    BTFType,
    Composite,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumBase,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Member,
    Param,
    Pointer,
    Qualifier,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

__all__ = ["BTF_MAGIC", "MAX_RESOLVE_DEPTH", "POINTER_SIZE", "Spec", "elf_section"]

MAX_RESOLVE_DEPTH = 64
"""Longest typedef/qualifier/array chain followed before assuming a cycle."""
POINTER_SIZE = 8
"""BPF is a 64-bit machine: BTF does not record pointer size, every BPF target uses 8."""

# Record length = _RECLEN[info >> 24] + vlen * _PER_VLEN[info >> 24]: tables indexed by
# the info word's top byte (kind + kind_flag) so the hot index loop needs no masking.
# ``None`` marks kinds that cannot appear in a type section (UNKN, unknown kinds, reserved
# bits set), so the loop fails with TypeError instead of mis-sizing the rest.
_RECLEN: list[int | None] = [None] * 256
_PER_VLEN: list[int] = [0] * 256
for _k, _fixed, _per in (
    (BTF_KIND_INT, 4, 0), (BTF_KIND_PTR, 0, 0), (BTF_KIND_ARRAY, 12, 0),
    (BTF_KIND_STRUCT, 0, 12), (BTF_KIND_UNION, 0, 12), (BTF_KIND_ENUM, 0, 8),
    (BTF_KIND_FWD, 0, 0), (BTF_KIND_TYPEDEF, 0, 0), (BTF_KIND_VOLATILE, 0, 0),
    (BTF_KIND_CONST, 0, 0), (BTF_KIND_RESTRICT, 0, 0), (BTF_KIND_FUNC, 0, 0),
    (BTF_KIND_FUNC_PROTO, 0, 8), (BTF_KIND_VAR, 4, 0), (BTF_KIND_DATASEC, 0, 12),
    (BTF_KIND_FLOAT, 0, 0), (BTF_KIND_DECL_TAG, 4, 0), (BTF_KIND_TYPE_TAG, 0, 0),
    (BTF_KIND_ENUM64, 0, 12),
):
    for _flag in (0, 0x80):
        _RECLEN[_k | _flag] = 12 + _fixed
        _PER_VLEN[_k | _flag] = _per

_KIND_MASK = 0x1F
_VLEN_MASK = 0xFFFF

T = TypeVar("T", bound=BTFType)
KindArg: TypeAlias = "int | type[BTFType] | None"
"""A kind filter: a BTF_KIND_* number or a type class such as ``Struct``."""
KindClass: TypeAlias = "type[T]"  # spelled as an alias: inside Spec, ``type`` is a method


def _kind_num(kind: KindArg) -> int | None:
    if kind is None or isinstance(kind, int):
        return kind
    return kind.kind


class Spec(KernelBTF):
    """A set of BTF types (optionally split on top of a ``base`` Spec).

    Ids ``0 .. len(spec) - 1`` are valid; id 0 is ``void``.  Types are mutable
    dataclasses: a loader may edit them in place, replace them (``spec[id] = t``) or
    append new ones (:meth:`add`) and then :meth:`to_bytes`.  After renaming a type in
    place call :meth:`reindex` so name look-ups see the new name.
    """

    def __init__(self, *, base: Spec | None = None, byteorder: str = "little") -> None:
        if byteorder not in ("little", "big"):
            raise BTFError(f"BTF byteorder must be 'little' or 'big', not {byteorder!r}")
        if base is not None and base.byteorder != byteorder:
            raise BTFError("split BTF must have the byte order of its base")
        self._base = base
        self._byteorder = byteorder
        self._fmt = "<" if byteorder == "little" else ">"
        self._first = len(base) if base is not None else 1
        self._str_base = base._str_total() if base is not None else 0
        self._raw: bytes | None = None
        self._offs: array[int] = array("I")
        self._tend = 0
        self._strs = b"" if base is not None else b"\0"
        self._cache: list[BTFType | None] = []
        #: name offset of each own type, in id order (None once types were added/renamed)
        self._name_offs: array[int] | None = array("I")
        self._name_col: bytes | None = None  # see _name_column
        self._name_used: frozenset[int] | None = None  # see _name_set
        self._name_strs: dict[str, list[int]] | None = None
        self._strdict: dict[bytes, int] | None = None
        self._found: dict[str, list[int]] = {}
        self._void = Void(id=0)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, base: Spec | None = None, *,
                   lazy: bool = False) -> Spec:
        """Parse raw BTF (``.BTF`` section contents or a ``/sys/kernel/btf`` file).

        With ``base`` the data is split BTF: its ids continue after ``base``'s and its
        string offsets continue after ``base``'s string section.  ``lazy=False``
        decodes (and so validates) every type now; ``lazy=True`` only indexes.
        """
        raw = bytes(data)
        if len(raw) > 0xFFFFFFFF:
            raise BTFError(f"BTF blob of {len(raw)} bytes is larger than the format allows")
        if len(raw) < HEADER_LEN:
            raise BTFError(f"BTF too short: {len(raw)} bytes, the header alone is {HEADER_LEN}")
        if raw[0] == 0x9F and raw[1] == 0xEB:
            order = "little"
        elif raw[0] == 0xEB and raw[1] == 0x9F:
            order = "big"
        else:
            raise BTFError(f"bad BTF magic 0x{raw[0]:02x}{raw[1]:02x} (want 0xeb9f)")
        if base is not None and base.byteorder != order:
            raise BTFError("split BTF byte order differs from its base's")
        fmt = "<" if order == "little" else ">"
        _magic, version, _flags, hdr_len, t_off, t_len, s_off, s_len = struct.unpack_from(
            fmt + "HBBIIIII", raw, 0)
        if version != BTF_VERSION:
            raise BTFError(f"unsupported BTF version {version} (want {BTF_VERSION})")
        if hdr_len < HEADER_LEN or hdr_len > len(raw):
            raise BTFError(f"bad BTF header length {hdr_len} (blob is {len(raw)} bytes)")
        body = len(raw) - hdr_len
        if t_off + t_len > body:
            raise BTFError(f"BTF type section [{t_off}, +{t_len}) runs past the end of the "
                           f"data ({body} bytes after the header)")
        if s_off + s_len > body:
            raise BTFError(f"BTF string section [{s_off}, +{s_len}) runs past the end of the "
                           f"data ({body} bytes after the header)")
        strs = raw[hdr_len + s_off: hdr_len + s_off + s_len]
        if strs and strs[-1] != 0:
            raise BTFError("BTF string section is not NUL-terminated")
        if base is None and strs and strs[0] != 0:
            raise BTFError("BTF string section does not start with the empty string")
        spec = cls(base=base, byteorder=order)
        spec._raw = raw
        spec._strs = strs if (strs or base is not None) else b"\0"
        start = hdr_len + t_off
        spec._index(raw, start, start + t_len)
        if not lazy:
            for tid in range(spec._first, len(spec)):
                spec.type(tid)
        return spec

    @classmethod
    def from_elf_section(cls, data: bytes | bytearray | memoryview,
                         base: Spec | None = None) -> Spec:
        """Parse the contents of an object file's ``.BTF`` section."""
        return cls.from_bytes(data, base)

    @classmethod
    def build(cls, types: Iterable[BTFType], base: Spec | None = None,
              byteorder: str = "little") -> Spec:
        """Make a Spec from type objects, numbering them in order (a leading Void is skipped)."""
        spec = cls(base=base, byteorder=base.byteorder if base is not None else byteorder)
        for t in types:
            if isinstance(t, Void):
                continue
            spec.add(t)
        return spec

    # ------------------------------------------------------------------ indexing
    def _index(self, raw: bytes, start: int, end: int) -> None:
        """One pass over the type section: each type's offset and name offset.

        Two flat ``array('I')`` columns and no per-type Python objects: the kernel's ~126k
        types index in one tight loop, and a name look-up searches the name-offset column
        at C speed (:meth:`_scan_name`) instead of a dict built for every name up front.
        """
        offs = array("I")
        append = offs.append
        noffs = array("I")
        nappend = noffs.append
        unpack = struct.Struct(self._fmt + "II").unpack_from
        reclen, per = _RECLEN, _PER_VLEN
        off = start
        info = 0
        try:
            while off < end:
                name_off, info = unpack(raw, off)
                append(off)
                nappend(name_off)
                top = info >> 24
                off += reclen[top] + (info & 0xFFFF) * per[top]
        except TypeError:
            tid = self._first + len(offs) - 1
            off = offs[-1]
            kind = (info >> 24) & 31
            if info & 0x60000000:
                what = f"reserved info bits set (info 0x{info:08x})"
            elif kind == 0:
                what = "invalid kind 0 (UNKN)"
            else:
                what = f"unknown kind {kind}"
            raise BTFError(f"BTF type id {tid} at offset {off - start} of the type section has "
                           f"{what}")
        except struct.error:
            tid = self._first + len(offs)
            raise BTFError(f"BTF type id {tid} at offset {off - start} is truncated: the type "
                           f"section ends at {end - start}")
        if off != end:
            last = self._first + len(offs) - 1
            raise BTFError(f"BTF type id {last} (at offset {offs[-1] - start}) runs past the end of "
                           f"the type section ({off - start} > {end - start}): vlen too large?")
        self._offs = offs
        self._tend = end
        self._cache = [None] * len(offs)
        self._name_offs = noffs

    # ------------------------------------------------------------------ basic access
    @property
    def base(self) -> Spec | None:
        return self._base

    @property
    def first_id(self) -> int:
        """The first id this Spec itself holds (1, or ``len(base)`` for split BTF)."""
        return self._first

    @property
    def byteorder(self) -> str:
        return self._byteorder

    @property
    def raw(self) -> bytes:
        """The bytes this Spec was parsed from (for a built Spec, its encoding)."""
        if self._raw is None:
            return self.to_bytes()
        return self._raw

    @property
    def strings(self) -> bytes:
        """This Spec's own string section (offsets into it start at ``string_base``)."""
        return self._strs

    @property
    def string_base(self) -> int:
        """Offset of this Spec's first string (the base's string length for split BTF)."""
        return self._str_base

    def _str_total(self) -> int:
        return self._str_base + len(self._strs)

    def string(self, off: int) -> str:
        """The NUL-terminated string at string offset ``off`` (split-aware)."""
        if off < self._str_base:
            if self._base is None or off < 0:
                raise BTFError(f"BTF string offset {off} is out of range")
            return self._base.string(off)
        if off == 0:
            return ""
        local = off - self._str_base
        strs = self._strs
        if local >= len(strs):
            raise BTFError(f"BTF string offset {off} is past the end of the string section "
                           f"({self._str_total()} bytes)")
        end = strs.find(b"\0", local)
        if end < 0:
            raise BTFError(f"BTF string at offset {off} is not NUL-terminated")
        return strs[local:end].decode("utf-8", "surrogateescape")

    def __len__(self) -> int:
        return self._first + len(self._cache)

    def __iter__(self) -> Iterator[BTFType]:
        for tid in range(len(self)):
            yield self.type(tid)

    def own_ids(self) -> range:
        """Ids held by this Spec itself (not by its base)."""
        return range(self._first, len(self))

    def type(self, tid: int) -> BTFType:
        """The type with id ``tid`` (decoded on first access)."""
        local = tid - self._first
        if local < 0:
            if self._base is not None and tid >= 0:
                return self._base.type(tid)
            if tid == 0:
                return self._void
            raise BTFError(f"BTF type id {tid} is out of range")
        try:
            t = self._cache[local]
        except (IndexError, TypeError):
            raise BTFError(f"BTF type id {tid!r} is out of range (ids go up to {len(self) - 1})")
        if t is None:
            t = self._decode(local)
            self._cache[local] = t
        return t

    def __getitem__(self, tid: int) -> BTFType:
        return self.type(tid)

    def __setitem__(self, tid: int, t: BTFType) -> None:
        """Replace type ``tid`` (which must belong to this Spec, not its base)."""
        local = tid - self._first
        if not 0 <= local < len(self._cache):
            raise BTFError(f"cannot replace BTF type id {tid}: not one of this spec's ids "
                           f"({self._first}..{len(self) - 1})")
        if isinstance(t, Void):
            raise BTFError("cannot store void as a BTF type")
        t.id = tid
        self._cache[local] = t
        self._mutated()

    def add(self, t: BTFType) -> int:
        """Append ``t``, set its id and return that id."""
        if isinstance(t, Void) or type(t) is BTFType:
            raise BTFError(f"cannot add {type(t).__name__} to a BTF spec")
        t.id = len(self)
        self._cache.append(t)
        self._mutated()
        return t.id

    def _mutated(self) -> None:
        self._name_offs = None
        self._name_col = None
        self._name_used = None
        self._name_strs = None
        self._found = {}

    def reindex(self) -> None:
        """Forget name indexes (call after renaming types in place)."""
        self._mutated()

    def copy(self) -> Spec:
        """A copy whose types can be changed without touching this Spec (shares the base)."""
        new = self.shallow_copy()
        new._cache = [None if t is None else _copy.deepcopy(t) for t in self._cache]
        return new

    def shallow_copy(self) -> Spec:
        """A copy that shares this Spec's type objects (copy on write): change it by
        replacing types (``spec[id] = dataclasses.replace(t, ...)``) or adding them, never
        by editing a type in place, which would change this Spec too."""
        new = Spec.__new__(Spec)
        for attr in ("_base", "_byteorder", "_fmt", "_first", "_str_base", "_raw", "_offs",
                     "_tend", "_strs", "_name_offs", "_name_col", "_name_used", "_name_strs",
                     "_strdict"):
            setattr(new, attr, getattr(self, attr))
        new._cache = list(self._cache)
        if new._name_strs is not None:
            new._name_strs = {k: list(v) for k, v in new._name_strs.items()}
        new._found = dict(self._found)
        new._void = Void(id=0)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Spec):
            return NotImplemented
        if len(self) != len(other) or self._byteorder != other._byteorder:
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        split = f", split after {self._first - 1}" if self._base is not None else ""
        return f"<btf.Spec {len(self)} ids, {self._byteorder}-endian{split}>"

    # ------------------------------------------------------------------ cheap raw queries
    def _raw_header(self, tid: int) -> tuple[int, int] | None:
        """(name_off, info) straight from the blob, or None when the type was replaced/added."""
        local = tid - self._first
        if 0 <= local < len(self._offs) and self._raw is not None:
            name_off, info = struct.unpack_from(self._fmt + "II", self._raw, self._offs[local])
            return name_off, info
        return None

    def kind_of(self, tid: int) -> int:
        """The BTF_KIND_* of ``tid`` without decoding it."""
        if tid < self._first and self._base is not None and tid >= 0:
            return self._base.kind_of(tid)
        local = tid - self._first
        if 0 <= local < len(self._cache) and self._cache[local] is not None:
            return self._cache[local].kind  # type: ignore[union-attr]
        hdr = self._raw_header(tid)
        if hdr is not None:
            return (hdr[1] >> 24) & _KIND_MASK
        return self.type(tid).kind

    def name_of(self, tid: int) -> str:
        """The name of ``tid`` ("" if anonymous) without decoding it."""
        if tid < self._first and self._base is not None and tid >= 0:
            return self._base.name_of(tid)
        local = tid - self._first
        if 0 <= local < len(self._cache) and self._cache[local] is not None:
            return self._cache[local].name  # type: ignore[union-attr]
        hdr = self._raw_header(tid)
        if hdr is not None:
            return self.string(hdr[0])
        return self.type(tid).name

    # ------------------------------------------------------------------ name look-ups
    def _string_chunks(self) -> list[tuple[bytes, int]]:
        chunks = self._base._string_chunks() if self._base is not None else []
        chunks.append((self._strs, self._str_base))
        return chunks

    def _own_ids_named(self, name: str) -> list[int]:
        hit = self._found.get(name)
        if hit is None:
            hit = self._found[name] = self._scan_name(name)
        return list(hit)

    def _scan_name(self, name: str) -> list[int]:
        if self._name_offs is None:
            if self._name_strs is None:
                idx: dict[str, list[int]] = {}
                for tid in self.own_ids():
                    n = self.type(tid).name
                    if n:
                        idx.setdefault(n, []).append(tid)
                self._name_strs = idx
            return list(self._name_strs.get(name, ()))
        col = self._name_column()
        pat = name.encode("utf-8", "surrogateescape") + b"\0"
        starts: list[int] = []
        tails: list[int] = []
        for buf, delta in self._string_chunks():
            p = buf.find(pat)
            while p >= 0:
                # a whole string, or the tail of a longer one ("file" in "inode_file"): names
                # normally point at whole strings, but BTF may share tails, so those count too
                (starts if p == 0 or buf[p - 1] == 0 else tails).append(p + delta)
                p = buf.find(pat, p + 1)
        if len(tails) > 8:  # a common tail: keep only offsets some type is named by
            used = self._name_set()
            tails = [t for t in tails if t in used]
        found: list[int] = []
        for off in starts + tails:
            # every type named by this offset: an aligned 4-byte match in the column
            needle = struct.pack("=I", off)  # the column's native order
            i = col.find(needle)
            while i >= 0:
                if not i & 3:
                    found.append(self._first + (i >> 2))
                i = col.find(needle, i + 1)
        if len(found) > 1:
            found = sorted(set(found))
        return found

    def _name_column(self) -> bytes:
        """The name-offset column as bytes (made once, on the first name look-up)."""
        col = self._name_col
        if col is None:
            assert self._name_offs is not None
            col = self._name_col = self._name_offs.tobytes()
        return col

    def _name_set(self) -> frozenset[int]:
        """Every name offset in use (made once, only for names that are common tails)."""
        if self._name_used is None:
            assert self._name_offs is not None
            self._name_used = frozenset(self._name_offs)
        return self._name_used

    def ids_by_name(self, name: str, kind: KindArg = None) -> list[int]:
        """Ids of the types called ``name`` (optionally of one kind), base first, in id order."""
        if not name:
            return []
        ids = self._base.ids_by_name(name) if self._base is not None else []
        ids.extend(self._own_ids_named(name))
        k = _kind_num(kind)
        if k is not None:
            ids = [i for i in ids if self.kind_of(i) == k]
        return ids

    def types_by_name(self, name: str, kind: KindArg = None) -> list[BTFType]:
        """The types called ``name`` (optionally of one kind)."""
        return [self.type(i) for i in self.ids_by_name(name, kind)]

    @overload
    def find(self, name: str, kind: KindClass[T]) -> T: ...
    @overload
    def find(self, name: str, kind: int | None = None) -> BTFType: ...

    def find(self, name: str, kind: Any = None) -> Any:
        """The one type called ``name`` (of ``kind``); BTFError if none or several."""
        ids = self.ids_by_name(name, kind)
        k = _kind_num(kind)
        what = f"{KIND_NAMES.get(k, k)} " if k is not None else ""
        if not ids:
            raise BTFError(f"no BTF type {what}named {name!r}")
        if len(ids) > 1:
            raise BTFError(f"{len(ids)} BTF types {what}named {name!r} (ids {ids[:8]}): "
                           "give a kind or use types_by_name()")
        return self.type(ids[0])

    # ------------------------------------------------------------------ decoding
    def _ref(self, tid: int, ref: int, what: str) -> int:
        if ref >= len(self):
            raise BTFError(f"BTF type id {tid}: {what} refers to type id {ref}, but the spec "
                           f"only has ids up to {len(self) - 1}")
        return ref

    def _decode(self, local: int) -> BTFType:
        raw = self._raw
        tid = local + self._first
        if raw is None or local >= len(self._offs):  # cannot happen: added types are cached
            raise BTFError(f"BTF type id {tid} has no data")
        fmt = self._fmt
        off = self._offs[local]
        name_off, info, st = struct.unpack_from(fmt + "III", raw, off)
        kind = (info >> 24) & _KIND_MASK
        vlen = info & _VLEN_MASK
        kflag = bool(info >> 31)
        try:
            name = self.string(name_off)
        except BTFError as e:
            raise BTFError(f"BTF type id {tid} ({KIND_NAMES.get(kind)}): bad name: {e}")
        p = off + 12
        ref = self._ref
        t: BTFType
        if kind == BTF_KIND_INT:
            (enc,) = struct.unpack_from(fmt + "I", raw, p)
            bits = enc & 0xFF
            ioff = (enc >> 16) & 0xFF
            if bits > 128 or ioff + bits > st * 8 or st > 16:
                raise BTFError(f"BTF type id {tid} (INT {name!r}): bad layout: size {st}, "
                               f"bit offset {ioff}, {bits} bits")
            t = Int(st, (enc >> 24) & 0x0F, ioff, bits, id=tid, name=name)
        elif kind == BTF_KIND_PTR:
            t = Pointer(ref(tid, st, "pointer target"), id=tid, name=name)
        elif kind == BTF_KIND_ARRAY:
            et, it, n = struct.unpack_from(fmt + "III", raw, p)
            t = Array(ref(tid, et, "element type"), ref(tid, it, "index type"), n,
                      id=tid, name=name)
        elif kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
            members = []
            for i, (mn, mt, mo) in enumerate(struct.iter_unpack(fmt + "III", raw[p:p + 12 * vlen])):
                try:
                    mname = self.string(mn)
                except BTFError as e:
                    raise BTFError(f"BTF type id {tid} ({KIND_NAMES[kind]} {name!r}) member {i}: {e}")
                ref(tid, mt, f"member {i} ({mname!r})")
                if kflag:
                    members.append(Member(mname, mt, mo & 0xFFFFFF, mo >> 24))
                else:
                    members.append(Member(mname, mt, mo, 0))
            cls = Struct if kind == BTF_KIND_STRUCT else Union
            t = cls(st, members, id=tid, name=name)
        elif kind == BTF_KIND_ENUM:
            values = []
            efmt = fmt + ("Ii" if kflag else "II")
            for i, (vn, vv) in enumerate(struct.iter_unpack(efmt, raw[p:p + 8 * vlen])):
                try:
                    values.append(EnumValue(self.string(vn), vv))
                except BTFError as e:
                    raise BTFError(f"BTF type id {tid} (ENUM {name!r}) value {i}: {e}")
            t = Enum(st, kflag, values, id=tid, name=name)
        elif kind == BTF_KIND_ENUM64:
            values = []
            for i, (vn, lo, hi) in enumerate(struct.iter_unpack(fmt + "III", raw[p:p + 12 * vlen])):
                v = (hi << 32) | lo
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                try:
                    values.append(EnumValue(self.string(vn), v))
                except BTFError as e:
                    raise BTFError(f"BTF type id {tid} (ENUM64 {name!r}) value {i}: {e}")
            t = Enum64(st, kflag, values, id=tid, name=name)
        elif kind == BTF_KIND_FWD:
            t = Fwd(kflag, id=tid, name=name)
        elif kind == BTF_KIND_TYPEDEF:
            t = Typedef(ref(tid, st, "typedef target"), id=tid, name=name)
        elif kind == BTF_KIND_VOLATILE:
            t = Volatile(ref(tid, st, "volatile target"), id=tid, name=name)
        elif kind == BTF_KIND_CONST:
            t = Const(ref(tid, st, "const target"), id=tid, name=name)
        elif kind == BTF_KIND_RESTRICT:
            t = Restrict(ref(tid, st, "restrict target"), id=tid, name=name)
        elif kind == BTF_KIND_FUNC:
            t = Func(ref(tid, st, "function prototype"), vlen, id=tid, name=name)
        elif kind == BTF_KIND_FUNC_PROTO:
            params = []
            for i, (pn, pt) in enumerate(struct.iter_unpack(fmt + "II", raw[p:p + 8 * vlen])):
                try:
                    params.append(Param(self.string(pn), ref(tid, pt, f"parameter {i}")))
                except BTFError as e:
                    raise BTFError(f"BTF type id {tid} (FUNC_PROTO) parameter {i}: {e}")
            t = FuncProto(ref(tid, st, "return type"), params, id=tid, name=name)
        elif kind == BTF_KIND_VAR:
            (linkage,) = struct.unpack_from(fmt + "I", raw, p)
            t = Var(ref(tid, st, "variable type"), linkage, id=tid, name=name)
        elif kind == BTF_KIND_DATASEC:
            vars_ = [VarSecinfo(ref(tid, vt, f"variable {i}"), vo, vs) for i, (vt, vo, vs)
                     in enumerate(struct.iter_unpack(fmt + "III", raw[p:p + 12 * vlen]))]
            t = Datasec(st, vars_, id=tid, name=name)
        elif kind == BTF_KIND_FLOAT:
            t = Float(st, id=tid, name=name)
        elif kind == BTF_KIND_DECL_TAG:
            (cidx,) = struct.unpack_from(fmt + "i", raw, p)
            t = DeclTag(ref(tid, st, "tagged type"), cidx, kflag, id=tid, name=name)
        elif kind == BTF_KIND_TYPE_TAG:
            t = TypeTag(ref(tid, st, "tagged type"), kflag, id=tid, name=name)
        else:  # the index pass rejects unknown kinds
            raise BTFError(f"BTF type id {tid} has unknown kind {kind}")
        return t

    # ------------------------------------------------------------------ type algebra
    def resolve(self, tid: int) -> int:
        """Skip typedef/const/volatile/restrict/type_tag and return the id underneath."""
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.type(tid)
            if isinstance(t, (Typedef, Qualifier, TypeTag)):
                tid = t.type
            else:
                return tid
        raise BTFError(f"BTF type chain at id {tid} is longer than {MAX_RESOLVE_DEPTH} "
                       "(a reference cycle?)")

    def resolve_type(self, tid: int) -> BTFType:
        return self.type(self.resolve(tid))

    def sizeof(self, tid: int) -> int:
        """Size in bytes of an object of type ``tid``."""
        start = tid
        mult = 1
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.type(tid)
            if isinstance(t, (Int, Composite, EnumBase, Float, Datasec)):
                return mult * t.size
            if isinstance(t, Pointer):
                return mult * POINTER_SIZE
            if isinstance(t, Array):
                mult *= t.nelems
                tid = t.type
            elif isinstance(t, (Typedef, Qualifier, TypeTag, Var)):
                tid = t.type
            else:
                raise BTFError(f"BTF type id {start}: {t.kind_name} {t.name!r} has no size")
        raise BTFError(f"BTF type id {start}: size chain longer than {MAX_RESOLVE_DEPTH} "
                       "(a reference cycle?)")

    def alignof(self, tid: int) -> int:
        """Natural alignment of type ``tid`` (1 for packed structs), as a C compiler lays it out."""
        return self._alignof(tid, 0, {})

    def _alignof(self, tid: int, depth: int, memo: dict[int, int]) -> int:
        """``memo`` keeps one query linear in the number of types (a struct whose members
        share a struct type, nested, would otherwise be exponential)."""
        got = memo.get(tid)
        if got is not None:
            return got
        if depth > MAX_RESOLVE_DEPTH:
            raise BTFError(f"BTF type id {tid}: alignment nesting deeper than "
                           f"{MAX_RESOLVE_DEPTH} (a reference cycle?)")
        t = self.type(tid)
        if isinstance(t, (Int, EnumBase, Float)):
            return max(1, min(t.size, POINTER_SIZE))
        if isinstance(t, Pointer):
            return POINTER_SIZE
        if isinstance(t, (Array, Typedef, Qualifier, TypeTag, Var)):
            return self._alignof(t.type, depth + 1, memo)
        if isinstance(t, Composite):
            best = 1
            for m in t.members:
                a = self._alignof(m.type, depth + 1, memo)
                best = max(best, a)
                if not m.bitfield_size and m.bit_offset % (8 * a):
                    best = 0  # a member off its natural alignment: the struct is packed
                    break
            best = 1 if best == 0 or t.size % best else best
            memo[tid] = best
            return best
        raise BTFError(f"BTF type id {tid}: {t.kind_name} {t.name!r} has no alignment")

    def type_name(self, tid: int) -> str:
        """A C spelling of type ``tid``: ``struct task_struct``, ``char[16]``, ``int *``."""
        return self._decl(tid, "", 0)

    def _decl(self, tid: int, inner: str, depth: int) -> str:
        if depth > MAX_RESOLVE_DEPTH:
            raise BTFError(f"BTF type id {tid}: declarator nesting deeper than "
                           f"{MAX_RESOLVE_DEPTH} (a reference cycle?)")
        t = self.type(tid)

        def join(base: str) -> str:
            if not inner:
                return base
            if inner[0] == "[":
                return base + inner
            return f"{base} {inner}"

        if isinstance(t, Void):
            return join("void")
        if isinstance(t, (Int, Float, Typedef)):
            return join(t.name or "(anon)")
        if isinstance(t, Struct):
            return join(f"struct {t.name or '(anon)'}")
        if isinstance(t, Union):
            return join(f"union {t.name or '(anon)'}")
        if isinstance(t, EnumBase):
            return join(f"enum {t.name or '(anon)'}")
        if isinstance(t, Fwd):
            return join(f"{'union' if t.is_union else 'struct'} {t.name or '(anon)'}")
        if isinstance(t, Pointer):
            target = self.type(t.type)
            if isinstance(target, (Array, FuncProto)):
                return self._decl(t.type, f"(*{inner})", depth + 1)
            return self._decl(t.type, f"*{inner}", depth + 1)
        if isinstance(t, Qualifier):
            q = {Const: "const", Volatile: "volatile", Restrict: "restrict"}[type(t)]
            if isinstance(self.type(t.type), Pointer):
                return self._decl(t.type, f"{q} {inner}".rstrip(), depth + 1)
            return f"{q} {self._decl(t.type, inner, depth + 1)}"
        if isinstance(t, TypeTag):
            return self._decl(t.type, inner, depth + 1)
        if isinstance(t, Array):
            return self._decl(t.type, f"{inner}[{t.nelems}]", depth + 1)
        if isinstance(t, FuncProto):
            return self._decl(t.return_type, f"{inner}({self._params(t, depth)})", depth + 1)
        if isinstance(t, Func):
            proto = self.type(t.type)
            if isinstance(proto, FuncProto):
                return self._decl(proto.return_type, f"{t.name}({self._params(proto, depth)})",
                                  depth + 1)
            return t.name
        if isinstance(t, Var):
            return self._decl(t.type, t.name, depth + 1)
        if isinstance(t, Datasec):
            return f"SEC(\"{t.name}\")"
        if isinstance(t, DeclTag):
            return f"__attribute__((btf_decl_tag(\"{t.name}\")))"
        return join(t.name)

    def _params(self, proto: FuncProto, depth: int) -> str:
        if not proto.params:
            return "void"
        out = []
        for p in proto.params:
            if p.type == 0 and not p.name:
                out.append("...")
            else:
                out.append(self._decl(p.type, "", depth + 1))
        return ", ".join(out)

    def to_bytes(self) -> bytes:
        """Encode this Spec's own types as raw BTF (split BTF for a Spec with a base); see
        :func:`bpfkit.btf.marshal.to_bytes`."""
        return marshal.to_bytes(self)
