"""ctypes types built from BTF, for code that prefers ``ctypes.Structure`` to records.

Layout is taken from BTF, never guessed: a struct is first built the natural way
(ctypes' own alignment, native bitfields) and its offsets are checked against BTF; if
anything differs (packed structs, over-aligned members, bitfields ctypes lays out
differently) it is rebuilt with ``_pack_ = 1``, explicit padding fields, and its
bitfields as properties over the raw bytes.  Either way ``sizeof`` and every member
offset equal BTF's.  Pointers become ``c_uint64`` (they hold kernel addresses, which must
not be dereferenced here), enums their integer type, ``char[N]`` a ``c_char`` array.
"""

from __future__ import annotations

import ctypes
import keyword
from typing import Any

from ..errors import BTFError
from .codec import spec_cache
from .parse import Spec
from .types import (
    Array,
    Composite,
    Datasec,
    EnumBase,
    Float,
    Int,
    Pointer,
    Qualifier,
    Typedef,
    TypeTag,
    Union,
    Var,
)

__all__ = ["ctypes_type"]

_INTS = {(1, False): ctypes.c_uint8, (1, True): ctypes.c_int8, (2, False): ctypes.c_uint16,
         (2, True): ctypes.c_int16, (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32,
         (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64}
_FLOATS = {4: ctypes.c_float, 8: ctypes.c_double}


def ctypes_type(spec: Spec, type_id: int) -> Any:
    """The ctypes type for BTF type ``type_id`` (cached per Spec)."""
    cache = spec_cache(spec, "ctypes")
    t = cache.get(type_id)
    if t is None:
        t = cache[type_id] = _build(spec, type_id, cache, 0)
    return t


def _build(spec: Spec, tid: int, cache: dict[int, Any], depth: int) -> Any:
    if depth > 64:
        raise BTFError(f"BTF type id {tid}: nesting too deep for ctypes (a cycle?)")
    if tid in cache:
        return cache[tid]
    t = spec.type(tid)
    r: Any
    if isinstance(t, (Typedef, Qualifier, TypeTag, Var)):
        r = _build(spec, t.type, cache, depth + 1)
    elif isinstance(t, Int):
        if t.is_bool and t.size == 1:
            r = ctypes.c_bool
        elif t.name == "char" and t.size == 1:
            r = ctypes.c_char
        elif (t.size, t.signed) in _INTS:
            r = _INTS[(t.size, t.signed)]
        else:
            r = ctypes.c_uint8 * t.size
    elif isinstance(t, Pointer):
        r = ctypes.c_uint64
    elif isinstance(t, EnumBase):
        r = _INTS.get((t.size, t.signed), ctypes.c_uint8 * t.size)
    elif isinstance(t, Float):
        r = _FLOATS.get(t.size, ctypes.c_uint8 * t.size)
    elif isinstance(t, Array):
        r = _build(spec, t.type, cache, depth + 1) * t.nelems
    elif isinstance(t, (Composite, Datasec)):
        r = _composite(spec, t, cache, depth)
    else:
        raise BTFError(f"BTF type id {tid} ({t.kind_name} {t.name!r}) has no ctypes equivalent")
    cache[tid] = r
    return r


def _fname(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def _members(spec: Spec, t: Composite | Datasec) -> list[tuple[str, int, int, int]]:
    """(name, type id, bit offset, bitfield bits) with old-style int bitfields normalised."""
    if isinstance(t, Datasec):
        return [(_fname(spec.type(v.type).name), v.type, v.offset * 8, 0) for v in t.vars]
    out = []
    for i, m in enumerate(t.members):
        bo, bs = m.bit_offset, m.bitfield_size
        mt = spec.resolve_type(m.type)
        if not bs and isinstance(mt, Int) and (mt.offset or mt.bits != mt.size * 8):
            bo, bs = bo + mt.offset, mt.bits
        out.append((_fname(m.name) if m.name else f"_anon{i}", m.type, bo, bs))
    return out


def _size(spec: Spec, t: Composite | Datasec) -> int:
    if isinstance(t, Datasec):
        return max([t.size] + [v.offset + v.size for v in t.vars])
    return t.size


def _composite(spec: Spec, t: Composite | Datasec, cache: dict[int, Any], depth: int) -> Any:
    base: Any = ctypes.Union if isinstance(t, Union) else ctypes.Structure
    name = t.name or f"anon_{t.id}"
    members = _members(spec, t)
    anon = [n for (n, _ti, _o, _b), m in zip(members, getattr(t, "members", []), strict=False)
            if not m.name]
    ftypes = {n: _build(spec, ti, cache, depth + 1) for n, ti, _o, _b in members}
    size = _size(spec, t)
    natural = _natural(base, name, members, ftypes, anon, size)
    if natural is not None:
        return natural
    return _packed(base, name, members, ftypes, anon, size)


def _natural(base: Any, name: str, members: list[tuple[str, int, int, int]],
             ftypes: dict[str, Any], anon: list[str], size: int) -> Any:
    fields: list[tuple[Any, ...]] = []
    for n, _ti, _bo, bs in members:
        if bs:
            ft = ftypes[n]
            if ft in (ctypes.c_bool, ctypes.c_char) or not hasattr(ft, "_type_"):
                return None
            fields.append((n, ft, bs))
        else:
            fields.append((n, ftypes[n]))
    ns: dict[str, Any] = {"_fields_": fields}
    if anon:
        ns["_anonymous_"] = anon
    try:
        cls = type(name, (base,), ns)
    except (TypeError, ValueError):
        return None
    if ctypes.sizeof(cls) != size:
        return None
    for n, _ti, bo, bs in members:
        f = getattr(cls, n)
        if bs:
            # CField.size packs (bit width << 16) | bit offset for bitfields
            if f.offset * 8 + (f.size & 0xFFFF) != bo or f.size >> 16 != bs:
                return None
        elif f.offset * 8 != bo:
            return None
    return cls


def _packed(base: Any, name: str, members: list[tuple[str, int, int, int]],
            ftypes: dict[str, Any], anon: list[str], size: int) -> Any:
    fields: list[tuple[str, Any]] = []
    props: dict[str, property] = {}
    cur = 0
    is_union = base is ctypes.Union
    bitfields: list[tuple[str, int, int, bool]] = []
    for n, _ti, bo, bs in members:
        if bs or bo % 8:
            signed = ftypes[n] in (ctypes.c_int8, ctypes.c_int16, ctypes.c_int32, ctypes.c_int64)
            bitfields.append((n, bo, bs or 8 * ctypes.sizeof(ftypes[n]), signed))
            continue
        off = bo // 8
        if not is_union:
            if off > cur:
                fields.append((f"_pad{len(fields)}", ctypes.c_uint8 * (off - cur)))
            elif off < cur:
                continue  # overlapping member (not C): reachable through the raw bytes only
        fields.append((n, ftypes[n]))
        if not is_union:
            cur = off + ctypes.sizeof(ftypes[n])
    if not is_union and cur < size:
        fields.append((f"_pad{len(fields)}", ctypes.c_uint8 * (size - cur)))
    if is_union:
        fields.append(("_raw", ctypes.c_uint8 * size))
    for n, bo, bs, signed in bitfields:
        props[n] = _bitfield_property(bo, bs, signed)
    ns: dict[str, Any] = {"_pack_": 1, "_fields_": fields, **props}
    keep = [a for a in anon if a in dict(fields)]
    if keep:
        ns["_anonymous_"] = keep
    cls = type(name, (base,), ns)
    if ctypes.sizeof(cls) != size:
        raise BTFError(f"cannot lay out {name} with ctypes: {ctypes.sizeof(cls)} bytes, "
                       f"BTF says {size}")
    return cls


def _bitfield_property(bo: int, bs: int, signed: bool) -> property:
    lo, hi = bo // 8, (bo + bs + 7) // 8
    shift = bo - lo * 8
    mask = (1 << bs) - 1

    def get(self: Any) -> int:
        raw = bytes(memoryview(self).cast("B")[lo:hi])
        v = (int.from_bytes(raw, "little") >> shift) & mask
        if signed and v >> (bs - 1):
            v -= 1 << bs
        return v

    def set_(self: Any, value: int) -> None:
        mv = memoryview(self).cast("B")
        cur = int.from_bytes(bytes(mv[lo:hi]), "little")
        cur = (cur & ~(mask << shift)) | ((int(value) & mask) << shift)
        mv[lo:hi] = cur.to_bytes(hi - lo, "little")

    return property(get, set_)
