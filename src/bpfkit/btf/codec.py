"""Typed values from BTF: turn map keys/values and ring-buffer records into Python objects.

``decoder_for(spec, type_id)`` compiles a decoder for one type *once*: all scalars,
pointers, char arrays and bitfield storage units of a struct (nested structs and small
arrays included) are read by a single precompiled :class:`struct.Struct`, and a generated
function builds the value, so decoding a 32-byte event costs about a microsecond.
Unions, large arrays and data sections get small generated helpers that the outer
decoder calls at their offset.

Value shapes (decoding produces them, encoding accepts them):

* integers -> ``int`` (``bool`` for BTF bools), pointers -> ``int`` (the raw address),
  floats -> ``float``, ``__int128`` -> ``int``;
* enums -> an :class:`EnumInt`: an ``int`` subclass made per enum type, so it compares
  equal to the number, with ``.name`` (``None`` for a value the enum does not list) and
  ``.value``.  Encoding also takes the enumerator's name as a string;
* ``char[N]`` -> ``str`` up to the first NUL (bytes outside UTF-8 are kept with
  ``surrogateescape`` so they round-trip); encoding takes ``str`` or ``bytes``;
* other arrays -> ``list``; encoding takes any sequence (``bytes`` for byte arrays),
  shorter sequences are zero-filled;
* structs, unions and data sections -> a :class:`Record`: a slotted class generated per
  type with attribute access, ``_asdict()``, iteration over values, ``==`` and a readable
  repr.  Members of anonymous structs/unions appear directly on the outer record, as in
  C.  A member called like a Python keyword gets a trailing ``_`` (``class_``).
  Encoding takes a record, a dict or a tuple (in field order); missing fields and
  ``None`` are zero.

A :class:`~bpfkit.btf.Spec` is mutable; compiled codecs are cached per Spec and type id,
so call :func:`clear_cache` after rewriting types in place.
"""

from __future__ import annotations

import keyword
import struct
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import BpfkitError, BTFError
from .parse import POINTER_SIZE, Spec
from .types import (
    Array,
    BTFType,
    Composite,
    Datasec,
    EnumBase,
    Float,
    Int,
    Pointer,
    Qualifier,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
)

__all__ = ["BTFCodec", "CodecError", "EnumInt", "Record", "clear_cache", "decoder_for",
           "find_type",
           "encoder_for", "record_class", "spec_cache"]

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], bytes]
_DecAt = Callable[[Any, int], Any]
_EncAt = Callable[[bytearray, int, Any], None]

_FLAT_LIMIT = 256
"""Most values one generated expression may build; bigger arrays get a loop helper."""


class CodecError(BpfkitError, ValueError):
    """A value cannot be encoded to (or bytes decoded from) a BTF type."""


# ---------------------------------------------------------------------- per-spec caches
_CACHES: dict[int, tuple[weakref.ref[Spec], dict[str, Any]]] = {}


def spec_cache(spec: Spec, namespace: str) -> dict[Any, Any]:
    """A dict that lives as long as ``spec`` (Specs are unhashable, so no WeakKeyDictionary)."""
    key = id(spec)
    entry = _CACHES.get(key)
    if entry is None or entry[0]() is not spec:
        entry = (weakref.ref(spec, _forget(key)), {})
        _CACHES[key] = entry
    return entry[1].setdefault(namespace, {})


def _forget(key: int, caches: dict[int, Any] = _CACHES) -> Callable[[Any], None]:
    # ``caches`` is bound now: at interpreter shutdown the module global may already be None.
    def drop(ref: Any) -> None:
        entry = caches.get(key)
        if entry is not None and entry[0] is ref:  # not a newer Spec that reused the id
            caches.pop(key, None)
    return drop


def clear_cache(spec: Spec | None = None) -> None:
    """Forget compiled codecs/ctypes types (of one Spec, or all) after types were edited."""
    if spec is None:
        _CACHES.clear()
    else:
        _CACHES.pop(id(spec), None)


# ---------------------------------------------------------------------- value classes
class EnumInt(int):
    """An enum value: an ``int`` that knows its enumerator name (``None`` if unlisted)."""

    __slots__ = ()
    _names: ClassVar[dict[int, str]] = {}
    _values: ClassVar[dict[str, int]] = {}
    _enum_name: ClassVar[str] = ""

    @property
    def name(self) -> str | None:
        return self._names.get(int(self))

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        n = self._names.get(int(self))
        what = f"enum {self._enum_name}" if self._enum_name else "enum"
        return f"<{what}.{n}: {int(self)}>" if n else f"<{what}: {int(self)}>"

    __str__ = int.__repr__


class Record:
    """Base of the generated struct/union record classes."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _btf_name: ClassVar[str] = ""

    def __iter__(self) -> Any:
        for f in self._fields:
            yield getattr(self, f)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return getattr(self, self._fields[key])

    def _asdict(self, recursive: bool = True) -> dict[str, Any]:
        """The fields as a dict (nested records and lists converted too unless ``recursive=False``)."""
        if not recursive:
            return {f: getattr(self, f) for f in self._fields}
        return {f: _plain(getattr(self, f)) for f in self._fields}

    def _replace(self, **changes: Any) -> Record:
        new = type(self)(*self)
        for k, v in changes.items():
            if k not in self._fields:
                raise AttributeError(f"{type(self).__name__} has no field {k!r}")
            setattr(new, k, v)
        return new

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"


def _plain(v: Any) -> Any:
    if isinstance(v, Record):
        return v._asdict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


_RESERVED = frozenset({"_fields", "_btf_name", "_asdict", "_replace"})


def _pyname(name: str) -> str:
    if keyword.iskeyword(name) or name in _RESERVED:
        return name + "_"
    return name


# ---------------------------------------------------------------------- compiler
class _Flat:
    """A type read as part of one ``struct`` format: items plus a value-building expression.

    ``items`` are ``(byte offset, format code, number of values)`` in increasing offset;
    ``build(first_value_index, offset_expr)`` returns a Python expression over ``v``
    (the unpacked tuple), ``buf`` and ``offset_expr`` for helpers it calls.
    """

    __slots__ = ("items", "build", "nvals")

    def __init__(self, items: list[tuple[int, str, int]],
                 build: Callable[[int, str], str]) -> None:
        self.items = items
        self.build = build
        self.nvals = sum(i[2] for i in items)


class _Compiler:
    """Compiles decoders/encoders for the types of one Spec (cached through spec_cache)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.e = "<" if spec.byteorder == "little" else ">"
        self.order: Any = spec.byteorder
        self.g: dict[str, Any] = {"CodecError": CodecError, "struct_error": struct.error}
        self._gids: dict[int, str] = {}
        self.flats: dict[int, _Flat | None] = {}
        self.dec_at: dict[int, _DecAt] = {}
        self.enc_at: dict[int, _EncAt] = {}
        self.records: dict[int, type[Record]] = {}
        self.enums: dict[int, type[EnumInt]] = {}
        self._building: set[int] = set()

    # -- helpers
    def gname(self, obj: Any, hint: str = "o") -> str:
        """Register ``obj`` in the generated code's globals and return its name."""
        k = id(obj)
        n = self._gids.get(k)
        if n is None:
            n = f"_{hint}{len(self._gids)}"
            self._gids[k] = n
            self.g[n] = obj
        return n

    def peel(self, tid: int) -> BTFType:
        """Skip typedefs/qualifiers/tags/vars (which do not change the bytes)."""
        spec = self.spec
        for _ in range(64):
            t = spec.type(tid)
            if isinstance(t, (Typedef, Qualifier, TypeTag, Var)):
                tid = t.type
                continue
            return t
        raise BTFError(f"BTF type id {tid}: typedef/qualifier chain too long (a cycle?)")

    def is_char(self, tid: int) -> bool:
        t = self.peel(tid)
        return isinstance(t, Int) and t.size == 1 and t.name == "char"

    def size(self, t: BTFType) -> int:
        if isinstance(t, Datasec):
            return _datasec_size(t)
        return self.spec.sizeof(t.id)

    def int_code(self, size: int, signed: bool) -> str | None:
        c = {1: "b", 2: "h", 4: "i", 8: "q"}.get(size)
        if c is None:
            return None
        return c if signed else c.upper()

    def enum_class(self, t: EnumBase) -> type[EnumInt]:
        cls = self.enums.get(t.id)
        if cls is None:
            names: dict[int, str] = {}
            for v in t.values:
                names.setdefault(v.value, v.name)
            cls = type(t.name or f"enum_{t.id}", (EnumInt,),
                       {"__slots__": (), "_names": names, "_values": t.as_dict(),
                        "_enum_name": t.name})
            self.enums[t.id] = cls
        return cls

    # -- records
    def fields_of(self, t: Composite | Datasec) -> list[tuple[str, int, int, int]]:
        """(python name, type id, bit offset, bitfield size) of the record's fields.

        Anonymous struct/union members are flattened into the outer record, like C does.
        Old-style (kind_flag=0) int bitfields are normalised to (offset, size).
        """
        out: list[tuple[str, int, int, int]] = []
        if isinstance(t, Datasec):
            for vs in t.vars:
                v = self.spec.type(vs.type)
                out.append((_pyname(v.name or f"var{vs.type}"), vs.type, vs.offset * 8, 0))
            return out
        for m in t.members:
            mt = self.peel(m.type)
            if not m.name:
                if isinstance(mt, Composite):
                    for name, tid, bo, bs in self.fields_of(mt):
                        out.append((name, tid, bo + m.bit_offset, bs))
                continue
            bo, bs = m.bit_offset, m.bitfield_size
            if not bs and isinstance(mt, Int) and (mt.offset or mt.bits != mt.size * 8):
                bo, bs = bo + mt.offset, mt.bits
            out.append((_pyname(m.name), m.type, bo, bs))
        return out

    def record(self, t: Composite | Datasec) -> type[Record]:
        cls = self.records.get(t.id)
        if cls is not None:
            return cls
        seen: dict[str, None] = {}
        for name, *_ in self.fields_of(t):
            seen.setdefault(name, None)
        fields = tuple(seen)
        cname = t.name or f"anon_{'union' if isinstance(t, Union) else 'struct'}_{t.id}"
        if not cname.isidentifier():
            cname = "".join(c if c.isalnum() else "_" for c in cname)
        cls = type(cname, (Record,), {"__slots__": fields, "_fields": fields,
                                     "_btf_name": t.name})
        for f in fields:  # names like "__pad" are mangled by __slots__: alias them back
            if f not in cls.__dict__:
                mangled = f"_{cname.lstrip('_')}{f}"
                setattr(cls, f, cls.__dict__[mangled])
        params = ", ".join(f"_{i}=None" for i in range(len(fields)))
        body = "".join(f"\n    self.{f} = _{i}" for i, f in enumerate(fields)) or "\n    pass"
        ns: dict[str, Any] = {}
        exec(f"def __init__(self, {params}):{body}", ns)  # noqa: S102 - generated code
        setattr(cls, "__init__", ns["__init__"])  # noqa: B010 - generated per record
        cls.__module__ = __name__
        self.records[t.id] = cls
        return cls

    # -- flat layouts
    def flat(self, tid: int) -> _Flat | None:
        t = self.peel(tid)
        key = t.id
        if key in self.flats:
            return self.flats[key]
        if key in self._building:
            raise BTFError(f"BTF type id {key} contains itself")
        self._building.add(key)
        try:
            f = self._flat(t)
        finally:
            self._building.discard(key)
        if f is not None and f.nvals > _FLAT_LIMIT:
            f = None
        self.flats[key] = f
        return f

    def _scalar(self, t: BTFType) -> tuple[str, Callable[[str], str]] | None:
        """(format code, wrap(expr)) for a scalar, or None if ``t`` is not one."""
        if isinstance(t, Int):
            if t.is_bool and t.size == 1:
                return "?", lambda x: x
            code = self.int_code(t.size, t.signed)
            if code is not None:
                return code, lambda x: x
            if t.size == 16:
                sig = t.signed
                return "16s", lambda x: f"int.from_bytes({x}, {self.order!r}, signed={sig})"
            return None
        if isinstance(t, Pointer):
            return "Q", lambda x: x
        if isinstance(t, EnumBase):
            code = self.int_code(t.size, t.signed)
            if code is None:
                return None
            e = self.gname(self.enum_class(t), "E")
            return code, lambda x: f"{e}({x})"
        if isinstance(t, Float):
            code = {2: "e", 4: "f", 8: "d"}.get(t.size)
            if code is None:
                return f"{t.size}s", lambda x: x
            return code, lambda x: x
        return None

    def _flat(self, t: BTFType) -> _Flat | None:
        sc = self._scalar(t)
        if sc is not None:
            code, wrap = sc
            return _Flat([(0, code, 1)], lambda b, o: wrap(f"v[{b}]"))
        if isinstance(t, Array):
            if t.nelems == 0:
                empty = "''" if self.is_char(t.type) else "[]"
                return _Flat([], lambda b, o: empty)
            if self.is_char(t.type):
                return _Flat([(0, f"{t.nelems}s", 1)], lambda b, o: (
                    f"v[{b}].partition(b'\\0')[0].decode('utf-8', 'surrogateescape')"))
            el = self.peel(t.type)
            sc = self._scalar(el)
            if sc is not None and len(sc[0]) == 1:
                code, wrap = sc
                n = t.nelems
                if wrap("x") == "x":
                    return _Flat([(0, f"{n}{code}", n)], lambda b, o: f"list(v[{b}:{b + n}])")
                return _Flat([(0, f"{n}{code}", n)], lambda b, o: "[" + ", ".join(
                    wrap(f"v[{b + i}]") for i in range(n)) + "]")
            ef = self.flat(t.type)
            if ef is None or ef.nvals * t.nelems > _FLAT_LIMIT:
                return None
            esz = self.spec.sizeof(t.type)
            items = [(i * esz + off, c, n) for i in range(t.nelems) for off, c, n in ef.items]
            nv = ef.nvals
            return _Flat(items, lambda b, o: "[" + ", ".join(
                ef.build(b + i * nv, f"{o} + {i * esz}") for i in range(t.nelems)) + "]")
        if isinstance(t, (Struct, Datasec)):
            return self._flat_struct(t)
        return None  # unions (members overlap), datasec-less oddities: helper function

    def _flat_struct(self, t: Struct | Datasec) -> _Flat | None:
        fields = self.fields_of(t)
        # Normal members and bitfield storage units ("groups"), each a list of byte ranges.
        items: list[tuple[int, str, int]] = []
        pieces: list[tuple[int, int, list[tuple[int, str, int]], Any]] = []
        # pieces: (start byte, end byte, items, kind) kind = ("flat", _Flat) | ("call", ...)
        exprs: dict[int, Callable[[int, str], str]] = {}
        groups: list[list[Any]] = []  # [lo, hi, [field idx...]]
        for idx, (_name, ftid, bo, bs) in enumerate(fields):
            if bs:
                lo, hi = bo // 8, (bo + bs + 7) // 8
                if groups and groups[-1][0] <= lo < groups[-1][1]:
                    g = groups[-1]
                    g[1] = max(g[1], hi)
                    g[2].append(idx)
                else:
                    groups.append([lo, hi, [idx]])
                continue
            if bo % 8:
                return None
            f = self.flat(ftid)
            start = bo // 8
            if f is None:
                pieces.append((start, start, [], ("call", idx, ftid, start)))
            else:
                sz = self.spec.sizeof(ftid)
                pieces.append((start, start + sz, f.items, ("flat", idx, f, start)))
        for lo, hi, idxs in groups:
            w = hi - lo
            code = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(w, f"{w}s")
            pieces.append((lo, hi, [(0, code, 1)], ("group", idxs, lo, w, code)))
        pieces.sort(key=lambda p: (p[0], p[1]))
        end = 0
        slot = 0
        for start, stop, pitems, kind in pieces:
            if pitems and start < end:
                return None  # overlapping members (not a C layout): no flat form
            base = slot
            for off, code, n in pitems:
                items.append((start + off, code, n))
                slot += n
            if pitems:
                end = stop
            if kind[0] == "flat":
                _, idx, f, st = kind
                exprs[idx] = _bind_flat(f, base, st)
            elif kind[0] == "call":
                _, idx, ftid, st = kind
                fn = self.gname(self.decoder_at(ftid), "d")
                exprs[idx] = _bind_call(fn, st)
            else:
                _, idxs, lo, w, code = kind
                for idx in idxs:
                    exprs[idx] = self._bitfield_expr(fields[idx], base, lo, w, code)
        rec = self.gname(self.record(t), "R")
        # the record takes de-duplicated names in first-seen order
        order: dict[str, int] = {}
        for idx, (name, *_r) in enumerate(fields):
            order.setdefault(name, idx)
        idx_list = list(order.values())

        def build(b: int, o: str) -> str:
            args = ", ".join(_shift_expr(exprs[i], b, o) for i in idx_list)
            return f"{rec}({args})"

        return _Flat(items, build)

    def _bitfield_expr(self, field: tuple[str, int, int, int], base: int, lo: int, w: int,
                       code: str) -> Callable[[int, str], str]:
        _name, ftid, bo, bs = field
        rel = bo - lo * 8
        shift = rel if self.order == "little" else w * 8 - rel - bs
        mask = (1 << bs) - 1
        t = self.peel(ftid)
        signed = isinstance(t, (Int, EnumBase)) and t.signed
        wrap: Callable[[str], str] = lambda x: x  # noqa: E731
        if isinstance(t, EnumBase):
            e = self.gname(self.enum_class(t), "E")
            wrap = lambda x: f"{e}({x})"  # noqa: E731
        elif isinstance(t, Int) and t.is_bool:
            wrap = lambda x: f"bool({x})"  # noqa: E731
        order = self.order

        def expr(b: int, o: str) -> str:
            src = f"v[{b + base}]"
            if code.endswith("s"):
                src = f"int.from_bytes({src}, {order!r})"
            x = f"(({src} >> {shift}) & {mask})" if shift else f"({src} & {mask})"
            if signed:
                sb = 1 << (bs - 1)
                x = f"(({x} ^ {sb}) - {sb})"
            return wrap(x)

        return expr

    # -- decoders at an offset
    def decoder_at(self, tid: int) -> _DecAt:
        t = self.peel(tid)
        fn = self.dec_at.get(t.id)
        if fn is not None:
            return fn
        f = self.flat(t.id)
        if f is not None:
            fn = self._gen_flat(f, f"d{t.id}")
        elif isinstance(t, Union):
            fn = self._gen_union(t)
        elif isinstance(t, Array):
            fn = self._gen_array(t)
        elif isinstance(t, (Struct, Datasec)):
            fn = self._gen_struct_slow(t)
        else:
            raise BTFError(f"cannot decode BTF type id {tid} ({t.kind_name} {t.name!r}): "
                           "it has no data layout")
        self.dec_at[t.id] = fn
        return fn

    def _fmt(self, items: list[tuple[int, str, int]]) -> str:
        out = [self.e]
        pos = 0
        for off, code, _n in items:
            if off > pos:
                out.append(f"{off - pos}x")
            out.append(code)
            pos = off + struct.calcsize("<" + code)
        return "".join(out)

    def _gen_flat(self, f: _Flat, name: str) -> _DecAt:
        lines = [f"def {name}(buf, off):"]
        if f.items:
            s = self.gname(struct.Struct(self._fmt(f.items)).unpack_from, "u")
            lines.append(f"    v = {s}(buf, off)")
        lines.append(f"    return {f.build(0, 'off')}")
        return self._exec("\n".join(lines), name)

    def _exec(self, src: str, name: str) -> Any:
        ns = self.g
        exec(compile(src, f"<bpfkit.btf.codec {name}>", "exec"), ns)  # noqa: S102
        return ns.pop(name)

    def _gen_union(self, t: Union) -> _DecAt:
        fields = self.fields_of(t)
        rec = self.gname(self.record(t), "R")
        args: dict[str, str] = {}
        for name, ftid, bo, bs in fields:
            if name in args:
                continue
            if bs or bo % 8:
                args[name] = f"{self._gen_bitfield((name, ftid, bo, bs or 8))}(buf, off)"
                continue
            fn = self.gname(self.decoder_at(ftid), "d")
            args[name] = f"{fn}(buf, off + {bo // 8})"
        src = f"def u{t.id}(buf, off):\n    return {rec}({', '.join(args.values())})"
        return self._exec(src, f"u{t.id}")

    def _gen_bitfield(self, field: tuple[str, int, int, int]) -> str:
        """A helper reading one bitfield (of a union or a non-flat struct); returns its name."""
        _n, _ftid, bo, bs = field
        lo, hi = bo // 8, (bo + bs + 7) // 8
        w = hi - lo
        code = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(w, f"{w}s")
        expr = self._bitfield_expr(field, 0, lo, w, code)(0, "off")
        s = self.gname(struct.Struct(self.e + code).unpack_from, "u")
        name = f"bf{len(self._gids)}"
        fn = self._exec(f"def {name}(buf, off):\n    v = {s}(buf, off + {lo})\n"
                        f"    return {expr}", name)
        return self.gname(fn, "d")

    def _gen_array(self, t: Array) -> _DecAt:
        fn = self.gname(self.decoder_at(t.type), "d")
        esz = self.spec.sizeof(t.type)
        src = (f"def a{t.id}(buf, off):\n"
               f"    return [{fn}(buf, off + i * {esz}) for i in range({t.nelems})]")
        return self._exec(src, f"a{t.id}")

    def _gen_struct_slow(self, t: Struct | Datasec) -> _DecAt:
        """A struct too big or odd for one format: one helper call per field."""
        rec = self.gname(self.record(t), "R")
        args: dict[str, str] = {}
        for name, ftid, bo, bs in self.fields_of(t):
            if name in args:
                continue
            if bs or bo % 8:
                args[name] = f"{self._gen_bitfield((name, ftid, bo, bs or 8))}(buf, off)"
            else:
                fn = self.gname(self.decoder_at(ftid), "d")
                args[name] = f"{fn}(buf, off + {bo // 8})"
        src = f"def s{t.id}(buf, off):\n    return {rec}({', '.join(args.values())})"
        return self._exec(src, f"s{t.id}")

    # -- top level
    def decoder(self, tid: int) -> Decoder:
        t = self.peel(tid)
        size = self.size(t)
        inner = self.gname(self.decoder_at(tid), "d")
        what = self.spec.type_name(tid) if not isinstance(t, Datasec) else t.name
        msg = self.gname(f"{what} needs {size} bytes", "m")
        f = self.flats.get(t.id)
        name = f"top{t.id}"
        if f is not None and f.items:
            s = self.gname(struct.Struct(self._fmt(f.items)).unpack_from, "u")
            src = (f"def {name}(buf):\n    try:\n        v = {s}(buf)\n"
                   f"        return {f.build(0, '0')}\n"
                   f"    except struct_error:\n"
                   f"        raise CodecError(f'{{{msg}}}, got {{len(buf)}}') from None")
        else:
            src = (f"def {name}(buf):\n    if len(buf) < {size}:\n"
                   f"        raise CodecError(f'{{{msg}}}, got {{len(buf)}}')\n"
                   f"    return {inner}(buf, 0)")
        return self._exec(src, name)

    # -- encoders
    def encoder_at(self, tid: int) -> _EncAt:
        t = self.peel(tid)
        fn = self.enc_at.get(t.id)
        if fn is None:
            fn = self._make_enc(t)
            self.enc_at[t.id] = fn
        return fn

    def _make_enc(self, t: BTFType) -> _EncAt:
        e = self.e
        if isinstance(t, Int):
            if t.size == 16:
                return _enc_int128(t.signed, self.order)
            code = "?" if t.is_bool and t.size == 1 else self.int_code(t.size, t.signed)
            if code is None:
                raise BTFError(f"cannot encode {t.size}-byte integer {t.name!r}")
            return _enc_scalar(struct.Struct(e + code).pack_into, int)
        if isinstance(t, Pointer):
            return _enc_scalar(struct.Struct(e + "Q").pack_into, int)
        if isinstance(t, EnumBase):
            code = self.int_code(t.size, t.signed)
            if code is None:
                raise BTFError(f"cannot encode {t.size}-byte enum {t.name!r}")
            return _enc_enum(struct.Struct(e + code).pack_into, t.as_dict(), t.name)
        if isinstance(t, Float):
            code = {2: "e", 4: "f", 8: "d"}.get(t.size)
            if code is None:
                return _enc_bytes(t.size, "float")
            return _enc_scalar(struct.Struct(e + code).pack_into, float)
        if isinstance(t, Array):
            if self.is_char(t.type):
                return _enc_bytes(t.nelems, "char array")
            el = self.peel(t.type)
            esz = self.spec.sizeof(t.type) if t.nelems else 0
            return _enc_array(self.encoder_at(t.type), esz, t.nelems,
                              isinstance(el, Int) and el.size == 1 and not el.is_bool)
        if isinstance(t, (Composite, Datasec)):
            return self._enc_record(t)
        raise BTFError(f"cannot encode BTF type id {t.id} ({t.kind_name} {t.name!r}): "
                       "it has no data layout")

    def _enc_record(self, t: Composite | Datasec) -> _EncAt:
        fields = self.fields_of(t)
        names = tuple(dict.fromkeys(f[0] for f in fields))
        known = frozenset(names)
        rec_cls = self.record(t)
        plan: list[tuple[str, int, Any, tuple[int, int, bool, int] | None]] = []
        for name, ftid, bo, bs in fields:
            if bs or bo % 8:
                lo, hi = bo // 8, (bo + bs + 7) // 8
                w = hi - lo
                rel = bo - lo * 8
                shift = rel if self.order == "little" else w * 8 - rel - bs
                plan.append((name, lo, None, (w, shift, False, bs)))
                ft = self.peel(ftid)
                if isinstance(ft, EnumBase):
                    plan[-1] = (name, lo, _enum_to_int(ft.as_dict(), ft.name), (w, shift, True, bs))
            else:
                plan.append((name, bo // 8, self.encoder_at(ftid), None))
        if isinstance(t, Union):  # write the widest members last so they win
            sizes = {f[0]: self.spec.sizeof(f[1]) if not f[3] else 0 for f in fields}
            plan.sort(key=lambda p: sizes.get(p[0], 0))
        order = self.order
        what = t.name or f"anonymous {t.kind_name.lower()}"

        def enc(buf: bytearray, off: int, value: Any) -> None:
            if value is None:
                return
            if type(value) is rec_cls:
                get: Callable[[str], Any] = lambda n: getattr(value, n)  # noqa: E731
            elif isinstance(value, Mapping):
                extra = set(value) - known
                if extra:
                    raise CodecError(f"{what} has no field(s) {sorted(extra)}; "
                                     f"fields: {', '.join(names)}")
                get = value.get
            elif isinstance(value, Record):
                get = lambda n: getattr(value, n, None)  # noqa: E731
            elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                if len(value) > len(names):
                    raise CodecError(f"{what} has {len(names)} fields, got {len(value)} values")
                d = dict(zip(names, value, strict=False))
                get = d.get
            else:
                raise CodecError(f"cannot encode {type(value).__name__} as {what}: give a "
                                 "record, a dict or a tuple")
            for name, moff, fenc, bf in plan:
                v = get(name)
                if v is None:
                    continue
                try:
                    if bf is None:
                        fenc(buf, off + moff, v)
                    else:
                        w, shift, is_enum, bs = bf
                        if is_enum:
                            v = fenc(v)
                        iv = int(v)
                        if not -(1 << (bs - 1)) <= iv < (1 << bs):
                            raise CodecError(f"{iv} does not fit in {bs} bits")
                        p = off + moff
                        cur = int.from_bytes(buf[p:p + w], order)
                        mask = ((1 << bs) - 1) << shift
                        cur = (cur & ~mask) | ((iv << shift) & mask)
                        buf[p:p + w] = cur.to_bytes(w, order)
                except CodecError as e:
                    raise CodecError(f"{what}.{name}: {e}") from None
                except (struct.error, TypeError, ValueError, OverflowError) as e:
                    raise CodecError(f"{what}.{name}: cannot encode {v!r}: {e}") from None

        return enc

    def encoder(self, tid: int) -> Encoder:
        t = self.peel(tid)
        size = self.size(t)
        enc = self.encoder_at(tid)

        def encode(value: Any) -> bytes:
            buf = bytearray(size)
            try:
                enc(buf, 0, value)
            except CodecError:
                raise
            except (struct.error, TypeError, ValueError, OverflowError) as e:
                raise CodecError(f"cannot encode {value!r}: {e}") from None
            return bytes(buf)

        return encode


def _bind_call(fn: str, st: int) -> Callable[[int, str], str]:
    return lambda b, o: f"{fn}(buf, {o} + {st})"


def _bind_flat(f: _Flat, base: int, st: int) -> Callable[[int, str], str]:
    return lambda b, o: f.build(b + base, f"{o} + {st}" if st else o)


def _shift_expr(fn: Callable[[int, str], str], b: int, o: str) -> str:
    return fn(b, o)


def _datasec_size(t: Datasec) -> int:
    return max([t.size] + [v.offset + v.size for v in t.vars])


def _enc_scalar(pack_into: Any, conv: Any) -> _EncAt:
    def enc(buf: bytearray, off: int, v: Any) -> None:
        pack_into(buf, off, conv(v))
    return enc


def _enc_int128(signed: bool, order: Any) -> _EncAt:
    def enc(buf: bytearray, off: int, v: Any) -> None:
        buf[off:off + 16] = int(v).to_bytes(16, order, signed=signed)
    return enc


def _enum_to_int(values: dict[str, int], ename: str) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, str):
            try:
                return values[v]
            except KeyError:
                raise CodecError(f"enum {ename} has no enumerator {v!r}") from None
        return int(v)
    return conv


def _enc_enum(pack_into: Any, values: dict[str, int], ename: str) -> _EncAt:
    conv = _enum_to_int(values, ename)

    def enc(buf: bytearray, off: int, v: Any) -> None:
        pack_into(buf, off, conv(v))
    return enc


def _enc_bytes(n: int, what: str) -> _EncAt:
    def enc(buf: bytearray, off: int, v: Any) -> None:
        b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
        if len(b) > n:
            raise CodecError(f"{len(b)} bytes do not fit in a {n}-byte {what}")
        buf[off:off + len(b)] = b
    return enc


def _enc_array(el: _EncAt, esz: int, n: int, byteish: bool) -> _EncAt:
    def enc(buf: bytearray, off: int, v: Any) -> None:
        if byteish and isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            if len(b) > n:
                raise CodecError(f"{len(b)} bytes do not fit in a {n}-element array")
            buf[off:off + len(b)] = b
            return
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
            raise CodecError(f"expected a sequence for a {n}-element array, got "
                             f"{type(v).__name__}")
        if len(v) > n:
            raise CodecError(f"{len(v)} values do not fit in a {n}-element array")
        for i, x in enumerate(v):
            if x is not None:
                el(buf, off + i * esz, x)
    return enc


# ---------------------------------------------------------------------- public API
def _compiler(spec: Spec) -> _Compiler:
    cache = spec_cache(spec, "codec")
    c = cache.get("compiler")
    if c is None:
        c = cache["compiler"] = _Compiler(spec)
    return c


def _type_id(spec: Spec, type_id: int | str) -> int:
    """Accept a type id or a name (``"event"``, ``"struct event"``, ``"union u"``)."""
    if isinstance(type_id, int):
        spec.type(type_id)  # range check
        return type_id
    name = type_id.strip()
    kinds: tuple[type[BTFType], ...] = (Struct, Union, Typedef, EnumBase, Int, Float, Datasec)
    for prefix, k in (("struct ", (Struct,)), ("union ", (Union,)), ("enum ", (EnumBase,))):
        if name.startswith(prefix):
            name, kinds = name[len(prefix):].strip(), k
            break
    for t in spec.types_by_name(name):
        if isinstance(t, kinds):
            return t.id
    raise BTFError(f"no BTF type named {type_id!r} with a data layout")


def find_type(spec: Spec, name: int | str) -> int:
    """The id of the type ``name`` names (``"event"``, ``"struct event"``, ``"union u"``),
    by the rules ``decoder_for`` uses; BTFError if there is none with a data layout."""
    return _type_id(spec, name)


def decoder_for(spec: Spec, type_id: int | str) -> Decoder:
    """A compiled function ``bytes | memoryview -> value`` for BTF type ``type_id``."""
    c = _compiler(spec)
    tid = _type_id(spec, type_id)
    cache = spec_cache(spec, "decoders")
    fn = cache.get(tid)
    if fn is None:
        fn = cache[tid] = c.decoder(tid)
    return fn


def encoder_for(spec: Spec, type_id: int | str) -> Encoder:
    """A function ``value -> bytes`` (exactly ``sizeof`` bytes) for BTF type ``type_id``."""
    c = _compiler(spec)
    tid = _type_id(spec, type_id)
    cache = spec_cache(spec, "encoders")
    fn = cache.get(tid)
    if fn is None:
        fn = cache[tid] = c.encoder(tid)
    return fn


def record_class(spec: Spec, type_id: int | str) -> type[Record]:
    """The generated record class of a struct/union/datasec (to build values to encode)."""
    c = _compiler(spec)
    t = c.peel(_type_id(spec, type_id))
    if not isinstance(t, (Composite, Datasec)):
        raise BTFError(f"BTF type id {t.id} ({t.kind_name}) is not a struct, union or datasec")
    return c.record(t)


class BTFCodec:
    """A map key/value codec (:class:`bpfkit.maps.Codec`) driven by a BTF type."""

    def __init__(self, spec: Spec, type_id: int | str) -> None:
        self.spec = spec
        self.type_id = _type_id(spec, type_id)
        c = _compiler(spec)
        t = c.peel(self.type_id)
        self.size: int = c.size(t)
        self.decode: Decoder = decoder_for(spec, self.type_id)
        self._encode: Encoder = encoder_for(spec, self.type_id)

    def encode(self, value: Any) -> bytes:
        """Bytes for ``value``; ready-made bytes of the right size pass through."""
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == self.size:
            c = _compiler(self.spec)
            t = c.peel(self.type_id)
            if not (isinstance(t, Array) and c.is_char(t.type)):
                return bytes(value)
        return self._encode(value)

    @property
    def record(self) -> type[Record] | None:
        """The record class when the type is a struct/union/datasec, else None."""
        try:
            return record_class(self.spec, self.type_id)
        except BTFError:
            return None

    def __repr__(self) -> str:
        return f"<BTFCodec {self.spec.type_name(self.type_id)} ({self.size} bytes)>"


assert POINTER_SIZE == 8  # the "Q" pointer format above relies on it
