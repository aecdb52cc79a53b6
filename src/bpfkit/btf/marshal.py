"""Encoding a :class:`~bpfkit.btf.parse.Spec` back to raw BTF (cilium's marshal.go).

The original string section is kept as a prefix and new names are appended, so string
offsets held elsewhere (``.BTF.ext`` line info) stay valid after a loader rewrites types;
types that were never decoded are copied byte for byte.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..errors import BTFError
from .types import (
    KIND_CLASSES,
    Array,
    BTFType,
    Composite,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Pointer,
    Qualifier,
    Typedef,
    TypeTag,
    Var,
)

if TYPE_CHECKING:
    from .parse import Spec

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
HEADER_LEN = 24
_VLEN_MASK = 0xFFFF


def strdict_of(spec: Spec) -> dict[bytes, int]:
    """Every whole string in this Spec's own section -> its (global) offset."""
    d = spec._strdict
    if d is None:
        d = {}
        pos = spec._str_base
        for piece in spec._strs.split(b"\0")[:-1] if spec._strs else ():
            d.setdefault(piece, pos)
            pos += len(piece) + 1
        spec._strdict = d
    return d

def to_bytes(spec: Spec) -> bytes:
    """Encode ``spec``'s own types as raw BTF (split BTF for a Spec with a base).

    The original string section is kept as a prefix and new names appended, so string
    offsets from the source (e.g. ``.BTF.ext`` line info) remain valid; types that
    were never decoded are copied unchanged.
    """
    fmt = spec._fmt
    lookups: list[dict[bytes, int]] = []
    b = spec._base
    while b is not None:
        lookups.append(strdict_of(b))
        b = b._base
    own = dict(strdict_of(spec))
    lookups.append(own)
    extra = bytearray()
    str_end = spec._str_total()

    def stroff(s: str) -> int:
        if not s:
            return 0
        key = s.encode("utf-8", "surrogateescape")
        for d in lookups:
            o = d.get(key)
            if o is not None:
                return o
        if b"\0" in key:
            raise BTFError(f"BTF name {s!r} contains a NUL byte")
        o = str_end + len(extra)
        extra.extend(key)
        extra.append(0)
        own[key] = o
        return o

    out: list[bytes] = []
    raw = spec._raw
    offs = spec._offs
    for local, t in enumerate(spec._cache):
        if t is None and raw is not None:
            end = offs[local + 1] if local + 1 < len(offs) else spec._tend
            out.append(raw[offs[local]:end])
            continue
        assert t is not None
        try:
            out.append(_encode(t, fmt, stroff))
        except (struct.error, OverflowError, TypeError, AttributeError) as e:
            raise BTFError(f"cannot encode BTF type id {local + spec._first} "
                           f"({t.kind_name} {t.name!r}): {e}")
    types = b"".join(out)
    strs = spec._strs + bytes(extra)
    if spec._base is None and not strs:
        strs = b"\0"
    hdr = struct.pack(fmt + "HBBIIIII", BTF_MAGIC, BTF_VERSION, 0, HEADER_LEN,
                      0, len(types), len(types), len(strs))
    return hdr + types + strs


def _encode(t: BTFType, fmt: str, stroff: Any) -> bytes:
    """Encode one type; ``stroff`` maps a name to its string offset."""
    kind = t.kind
    if kind not in KIND_CLASSES:
        raise BTFError(f"cannot encode a {type(t).__name__}")
    name_off = stroff(t.name)

    def head(vlen: int, kflag: bool, size_type: int) -> bytes:
        if vlen > _VLEN_MASK:
            raise BTFError(f"BTF {t.kind_name} {t.name!r} has {vlen} entries; at most "
                           f"{_VLEN_MASK} fit")
        info = (int(kflag) << 31) | (kind << 24) | vlen
        return struct.pack(fmt + "III", name_off, info, size_type)

    if isinstance(t, Int):
        enc = ((t.encoding & 0x0F) << 24) | ((t.offset & 0xFF) << 16) | (t.bits & 0xFF)
        return head(0, False, t.size) + struct.pack(fmt + "I", enc)
    if isinstance(t, (Pointer, Typedef, Qualifier)):
        return head(0, False, t.type)
    if isinstance(t, TypeTag):
        return head(0, t.attr, t.type)
    if isinstance(t, Array):
        return head(0, False, 0) + struct.pack(fmt + "III", t.type, t.index_type, t.nelems)
    if isinstance(t, Composite):
        kflag = any(m.bitfield_size for m in t.members)
        parts = [head(len(t.members), kflag, t.size)]
        for m in t.members:
            if kflag:
                if m.bit_offset >= 1 << 24 or not 0 <= m.bitfield_size < 256:
                    raise BTFError(f"member {m.name!r} of {t.name!r}: bit offset {m.bit_offset}"
                                   f"/bitfield size {m.bitfield_size} do not fit the encoding")
                mo = (m.bitfield_size << 24) | m.bit_offset
            else:
                mo = m.bit_offset
            parts.append(struct.pack(fmt + "III", stroff(m.name), m.type, mo))
        return b"".join(parts)
    if isinstance(t, Enum64):
        parts = [head(len(t.values), t.signed, t.size)]
        for v in t.values:
            u = v.value & 0xFFFFFFFFFFFFFFFF
            parts.append(struct.pack(fmt + "III", stroff(v.name), u & 0xFFFFFFFF, u >> 32))
        return b"".join(parts)
    if isinstance(t, Enum):
        parts = [head(len(t.values), t.signed, t.size)]
        for v in t.values:
            parts.append(struct.pack(fmt + "II", stroff(v.name), v.value & 0xFFFFFFFF))
        return b"".join(parts)
    if isinstance(t, Fwd):
        return head(0, t.is_union, 0)
    if isinstance(t, Func):
        return head(t.linkage, False, t.type)
    if isinstance(t, FuncProto):
        parts = [head(len(t.params), False, t.return_type)]
        for p in t.params:
            parts.append(struct.pack(fmt + "II", stroff(p.name), p.type))
        return b"".join(parts)
    if isinstance(t, Var):
        return head(0, False, t.type) + struct.pack(fmt + "I", t.linkage)
    if isinstance(t, Datasec):
        parts = [head(len(t.vars), False, t.size)]
        for sv in t.vars:
            parts.append(struct.pack(fmt + "III", sv.type, sv.offset, sv.size))
        return b"".join(parts)
    if isinstance(t, Float):
        return head(0, False, t.size)
    if isinstance(t, DeclTag):
        return head(0, t.attr, t.type) + struct.pack(fmt + "i", t.component_idx)
    raise BTFError(f"cannot encode a {type(t).__name__}")
