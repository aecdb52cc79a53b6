"""Record decoding for readers: ``record=`` resolved to a BTF decoder from the map's BTF."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from ..errors import BpfkitError

Record = Any


Callback = Callable[[Any], Any]


def _resolve_record(map_: Any, name: str) -> Callable[[bytes], Any]:
    """Decoder for the type ``name`` of the collection ``map_`` came from.

    Looks in the loader's per-map BTF (``map.btf`` or ``map.spec.btf``), then in the
    object's DWARF (types ``.BTF`` leaves out, such as a ``struct event`` used only as a
    local), and compiles it with the BTF value codec.
    """
    from ..btf.codec import decoder_for
    from ..errors import ParseError
    mname = getattr(map_, "name", "?")
    spec = getattr(map_, "btf", None)
    if spec is None:
        spec = getattr(getattr(map_, "spec", None), "btf", None)
    why = "the map carries no BTF"
    if spec is not None:
        try:
            return decoder_for(spec, name)
        except ParseError as e:
            why = str(e)
    obj = getattr(map_, "object_spec", None)
    if obj is not None:
        try:
            return decoder_for(obj.dwarf().to_btf(), name)
        except ParseError as e:
            why += f"; DWARF: {e}"
    raise BpfkitError(
        f"record type {name!r} is not usable for map {mname!r}: {why}. Load the map with "
        "bpfkit.load() from an object compiled with -g, or pass a ctypes type or a callable")


class RecordDecoder:
    """Turns a record (a region of a mapped ring) into a Python object.

    ``record`` is None (bytes), a ctypes type (an instance, or ``.value`` for scalars,
    copied out of the ring), a callable taking bytes, or a BTF type name.
    """

    def __init__(self, record: Any = None, map_: Any = None) -> None:
        self.kind = "bytes"
        self.ctype: Any = None
        self.size = 0
        self.func: Callable[[bytes], Any] | None = None
        self.scalar = False
        if record is None:
            return
        if isinstance(record, str):
            self.kind = "func"
            self.func = _resolve_record(map_, record)
        elif isinstance(record, type) and issubclass(
                record, (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)):
            self.kind = "ctype"
            self.ctype = record
            self.size = ctypes.sizeof(record)
            self.scalar = issubclass(record, ctypes._SimpleCData)
        elif callable(record):
            self.kind = "func"
            self.func = record
        else:
            raise BpfkitError(f"record= must be None, a ctypes type, a callable or a BTF type "
                              f"name, not {record!r}")

    def _short(self, length: int) -> BpfkitError:
        return BpfkitError(f"record of {length} bytes is shorter than "
                           f"{self.ctype.__name__} ({self.size} bytes)")

    def one(self, buf: Any, off: int, length: int) -> Any:
        if self.kind == "bytes":
            return buf[off:off + length]
        if self.kind == "ctype":
            if length < self.size:
                raise self._short(length)
            v = self.ctype.from_buffer_copy(buf, off)
            return v.value if self.scalar else v
        assert self.func is not None
        return self.func(bytes(buf[off:off + length]))

    def uniform(self, buf: Any, offsets: range, length: int, out: list[Any]) -> None:
        """Decode equal-length records at ``offsets`` into ``out`` (the hot path)."""
        if self.kind == "bytes":
            out += [buf[o:o + length] for o in offsets]
        elif self.kind == "ctype":
            if length < self.size:
                raise self._short(length)
            fbc = self.ctype.from_buffer_copy
            if self.scalar:
                out += [fbc(buf, o).value for o in offsets]
            else:
                out += [fbc(buf, o) for o in offsets]
        else:
            f = self.func
            assert f is not None
            out += [f(buf[o:o + length]) for o in offsets]
