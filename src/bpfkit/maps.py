"""BPF maps: creation, a dict-like API, batch operations, per-CPU values, queues, mmap.

A :class:`Map` owns a map fd and knows its key and value layout through a
:class:`Codec`, so that what it returns can be decoded (raw bytes, ctypes
structures, or BTF-typed Python values supplied by the loader).
"""

from __future__ import annotations

import ctypes
import errno
import mmap as _mmap
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from . import syscall as sc
from ._consts import (
    BPF_ANY,
    BPF_F_MMAPABLE,
    Cmd,
    MapType,
)
from .errors import ENOTSUPP, BpfkitError, KernelError, NotFound
from .fd import FDObject
from .host.cpus import possible_cpus

__all__ = ["Map", "MapInfo", "Codec", "RawCodec", "CtypesCodec", "possible_cpus"]


PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                          MapType.PERCPU_CGROUP_STORAGE})
ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                         MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.ARRAY_OF_MAPS})
FD_VALUE_TYPES = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                            MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.SOCKMAP,
                            MapType.SOCKHASH, MapType.DEVMAP, MapType.DEVMAP_HASH,
                            MapType.XSKMAP, MapType.CPUMAP, MapType.REUSEPORT_SOCKARRAY})
KEYLESS_TYPES = frozenset({MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER,
                           MapType.RINGBUF, MapType.USER_RINGBUF})


class Codec(Protocol):
    """Turns Python values into the bytes a map stores and back."""

    size: int

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class RawCodec:
    """Untyped layout: accepts bytes, ints, ctypes objects and objects with ``.fd``; returns bytes."""

    def __init__(self, size: int, byteorder: str = "little") -> None:
        self.size = size
        self.byteorder = byteorder

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
        elif isinstance(value, bool) or isinstance(value, int):
            signed = value < 0
            try:
                b = int(value).to_bytes(self.size, self.byteorder, signed=signed)  # type: ignore[arg-type]
            except OverflowError:
                raise BpfkitError(f"integer {value} does not fit in {self.size} bytes") from None
        elif isinstance(value, (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)):
            b = bytes(value)
        elif hasattr(value, "fd"):
            b = int(value.fd).to_bytes(self.size, self.byteorder)  # type: ignore[arg-type]
        else:
            raise BpfkitError(f"cannot encode {type(value).__name__} as a {self.size}-byte map "
                              "key/value: give bytes, an int or a ctypes object")
        if len(b) != self.size:
            raise BpfkitError(f"value has {len(b)} bytes, the map expects {self.size}")
        return b

    def decode(self, data: bytes) -> Any:
        return bytes(data)


class CtypesCodec(RawCodec):
    """A layout given as a ctypes type: values decode into instances of it."""

    def __init__(self, ctype: Any) -> None:
        super().__init__(ctypes.sizeof(ctype))
        self.ctype = ctype

    def encode(self, value: Any) -> bytes:
        if isinstance(value, int) and issubclass(self.ctype, ctypes._SimpleCData):
            return bytes(self.ctype(value))
        return super().encode(value)

    def decode(self, data: bytes) -> Any:
        v = self.ctype.from_buffer_copy(data)
        if isinstance(v, ctypes._SimpleCData):
            return v.value
        return v


_INT_FORMATS = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
                (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}


def column_decoder(codec: Codec) -> Callable[[bytes, int], list[Any]] | None:
    """A decoder of ``n`` back-to-back values at C speed (``memoryview.cast``), when the
    codec's values are plain integers in this machine's byte order; else None.

    Why: a batch dump hands back thousands of keys and values in two contiguous buffers;
    decoding them one ``decode`` call at a time is most of the cost of dumping a big map.
    """
    fmt: str | None = None
    if isinstance(codec, CtypesCodec):
        ct = codec.ctype
        if issubclass(ct, ctypes._SimpleCData) and ct._type_ in "bBhHiIlLqQ":
            fmt = ct._type_
    elif type(codec).__name__ == "BTFCodec":
        from .btf.types import Int, Pointer
        spec = codec.spec  # type: ignore[attr-defined]
        t = spec.resolve_type(codec.type_id)  # type: ignore[attr-defined]
        if spec.byteorder != sys.byteorder:
            return None
        if isinstance(t, Int) and t.encoding in (0, 1) and t.offset == 0 and \
                t.bits == t.size * 8:
            fmt = _INT_FORMATS.get((t.size, bool(t.encoding & 1)))
        elif isinstance(t, Pointer):
            fmt = "Q"
    if fmt is None or ctypes.sizeof(ctypes.c_long) != 8 and fmt in "lL":
        return None
    size = codec.size
    f = fmt

    def dec(buf: bytes, n: int) -> list[Any]:
        return memoryview(buf)[:n * size].cast(f).tolist()  # type: ignore[call-overload]
    return dec


def _codec(layout: Any, size: int) -> Codec:
    if layout is None:
        return RawCodec(size)
    if isinstance(layout, type) and issubclass(
            layout, (ctypes.Structure, ctypes.Union, ctypes.Array, ctypes._SimpleCData)):
        if ctypes.sizeof(layout) != size:
            raise BpfkitError(f"{layout.__name__} has {ctypes.sizeof(layout)} bytes, "
                              f"the map's size is {size}")
        return CtypesCodec(layout)
    if hasattr(layout, "encode") and hasattr(layout, "decode"):
        return layout
    raise BpfkitError(f"unsupported key/value layout {layout!r}")


@dataclass
class MapInfo:
    """What the kernel reports about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: MapType | int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int
    ifindex: int

    @classmethod
    def from_fd(cls, fd: int) -> MapInfo:
        i = sc.obj_info(fd, sc.MapInfo())
        try:
            mt: MapType | int = MapType(i.type)
        except ValueError:
            mt = i.type
        return cls(id=i.id, type=mt, name=i.name.decode(errors="replace"), key_size=i.key_size,
                   value_size=i.value_size, max_entries=i.max_entries, flags=i.map_flags,
                   btf_id=i.btf_id, btf_key_type_id=i.btf_key_type_id,
                   btf_value_type_id=i.btf_value_type_id, map_extra=i.map_extra,
                   ifindex=i.ifindex)


class Map(FDObject):
    """A loaded BPF map: ``m[key]``, ``m[key] = v``, ``del m[key]``, iteration, batches."""

    _kind = "map"

    def __init__(self, fd: int, *, type: int, key_size: int, value_size: int,
                 max_entries: int, flags: int = 0, name: str = "", key: Any = None,
                 value: Any = None) -> None:
        super().__init__(fd, name)
        try:
            self.type: MapType | int = MapType(type)
        except ValueError:
            self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.percpu = self.type in PERCPU_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        # Per-CPU values are an array of value_size rounded up to 8, one per possible CPU.
        self._stride = (value_size + 7) & ~7 if self.percpu else value_size
        self._vbuf_size = self._stride * self.ncpus
        self.key_codec: Codec = _codec(key, key_size)
        self.value_codec: Codec = _codec(value, value_size)
        self._kbuf = ctypes.create_string_buffer(max(key_size, 1))
        self._kbuf2 = ctypes.create_string_buffer(max(key_size, 1))
        self._vbuf = ctypes.create_string_buffer(max(self._vbuf_size, 1))
        self._attr = sc.MapElemAttr(map_fd=fd)
        self._mmap: _mmap.mmap | None = None
        self._batch_ok: bool | None = None

    # ----------------------------------------------------------------- construction

    @classmethod
    def create(cls, map_type: int, key_size: int = 0, value_size: int = 0, max_entries: int = 1,
               flags: int = 0, name: str = "", *, inner_map: Map | None = None,
               inner_map_fd: int = 0, numa_node: int = 0, map_extra: int = 0, ifindex: int = 0,
               btf_fd: int = 0, btf_key_type_id: int = 0, btf_value_type_id: int = 0,
               btf_vmlinux_value_type_id: int = 0, key: Any = None,
               value: Any = None) -> Map:
        """Create a map of any type the kernel has (BPF_MAP_CREATE)."""
        if inner_map is not None:
            inner_map_fd = inner_map.fd
        fd = sc.map_create(int(map_type), key_size, value_size, max_entries, flags=flags,
                           name=name, inner_map_fd=inner_map_fd, numa_node=numa_node,
                           map_extra=map_extra, ifindex=ifindex, btf_fd=btf_fd,
                           btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                           btf_vmlinux_value_type_id=btf_vmlinux_value_type_id)
        return cls(fd, type=map_type, key_size=key_size, value_size=value_size,
                   max_entries=max_entries, flags=flags, name=name, key=key, value=value)

    @classmethod
    def from_fd(cls, fd: int, *, key: Any = None, value: Any = None) -> Map:
        """Wrap an fd we own (it is closed with the Map)."""
        info = MapInfo.from_fd(fd)
        return cls(fd, type=info.type, key_size=info.key_size, value_size=info.value_size,
                   max_entries=info.max_entries, flags=info.flags, name=info.name, key=key,
                   value=value)

    @classmethod
    def from_pin(cls, path: str, *, key: Any = None, value: Any = None) -> Map:
        """Reopen a map pinned on bpffs."""
        return cls.from_fd(sc.obj_get(path), key=key, value=value)

    @classmethod
    def from_id(cls, map_id: int, *, key: Any = None, value: Any = None) -> Map:
        """Open a loaded map by its kernel id."""
        return cls.from_fd(sc.get_fd_by_id(Cmd.MAP_GET_FD_BY_ID, map_id), key=key, value=value)

    def info(self) -> MapInfo:
        return MapInfo.from_fd(self.fd)

    @property
    def id(self) -> int:
        return self.info().id

    def close(self) -> None:
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                pass  # exported views still alive; the mapping goes with them
            self._mmap = None
        super().close()

    # ----------------------------------------------------------------- encoding

    def _enc_key(self, key: Any) -> None:
        b = self.key_codec.encode(key)
        ctypes.memmove(self._kbuf, b, self.key_size)

    def _enc_value(self, value: Any) -> bytes:
        if self.percpu:
            if isinstance(value, (list, tuple)):
                if len(value) != self.ncpus:
                    raise BpfkitError(f"per-CPU map {self.name!r} needs {self.ncpus} values, "
                                      f"got {len(value)}")
                parts = [self.value_codec.encode(v).ljust(self._stride, b"\0") for v in value]
            else:
                parts = [self.value_codec.encode(value).ljust(self._stride, b"\0")] * self.ncpus
            return b"".join(parts)
        if self.type in FD_VALUE_TYPES and hasattr(value, "fd"):
            return int(value.fd).to_bytes(self.value_size, "little")
        return self.value_codec.encode(value)

    def _dec_value(self, raw: bytes) -> Any:
        if self.percpu:
            s, n = self._stride, self.value_size
            return [self.value_codec.decode(raw[i * s:i * s + n]) for i in range(self.ncpus)]
        return self.value_codec.decode(raw)

    def _objname(self) -> str:
        return f"map {self.name!r}"

    # ----------------------------------------------------------------- element ops

    def lookup(self, key: Any = None, flags: int = 0) -> Any | None:
        """Value for ``key`` or None if absent (BPF_MAP_LOOKUP_ELEM)."""
        if self.key_size:
            self._enc_key(key)
        raw = self._read_value(Cmd.MAP_LOOKUP_ELEM, flags)
        return None if raw is None else self._dec_value(raw)

    def __getitem__(self, key: Any) -> Any:
        v = self.lookup(key)
        if v is None:
            raise KeyError(key)
        return v

    def get(self, key: Any, default: Any = None) -> Any:
        v = self.lookup(key)
        return default if v is None else v

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        """Insert or replace (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
        a = self._attr
        a.map_fd = self.fd
        if self.key_size:
            self._enc_key(key)
            a.key = ctypes.addressof(self._kbuf)
        else:
            a.key = 0
        vb = self._enc_value(value)
        ctypes.memmove(self._vbuf, vb, len(vb))
        a.value = ctypes.addressof(self._vbuf)
        a.flags = flags
        err = sc.bpf_errno(Cmd.MAP_UPDATE_ELEM, a)
        if err:
            raise sc.raise_errno(Cmd.MAP_UPDATE_ELEM, err, self._objname())

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def delete(self, key: Any) -> bool:
        """Delete ``key``; False if it was absent."""
        a = self._attr
        a.map_fd = self.fd
        self._enc_key(key)
        a.key = ctypes.addressof(self._kbuf)
        a.value = 0
        a.flags = 0
        err = sc.bpf_errno(Cmd.MAP_DELETE_ELEM, a)
        if err == errno.ENOENT:
            return False
        if err:
            raise sc.raise_errno(Cmd.MAP_DELETE_ELEM, err, self._objname())
        return True

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        return self.lookup(key) is not None

    def lookup_and_delete(self, key: Any = None, flags: int = 0) -> Any | None:
        """Atomically read and remove (hash maps; pop for queue/stack when key is None)."""
        if self.key_size:
            self._enc_key(key)
        raw = self._read_value(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, flags)
        return None if raw is None else self._dec_value(raw)

    # queue / stack / bloom filter
    def push(self, value: Any, flags: int = BPF_ANY) -> None:
        """Push to a queue or stack, or add to a bloom filter."""
        self.update(None, value, flags)

    def pop(self, *args: Any) -> Any:
        """Queue/stack: pop a value (None if empty). Other maps: dict-style ``pop(key[, default])``."""
        if self.key_size == 0:
            return self.lookup_and_delete(None)
        key = args[0]
        v = self.lookup_and_delete(key) if self.type in (MapType.HASH, MapType.LRU_HASH,
                                                         MapType.PERCPU_HASH,
                                                         MapType.LRU_PERCPU_HASH) else None
        if v is None:
            v = self.lookup(key)
            if v is not None:
                self.delete(key)
        if v is None:
            if len(args) > 1:
                return args[1]
            raise KeyError(key)
        return v

    def peek(self) -> Any:
        """Queue/stack: the next value without removing it (None if empty)."""
        return self.lookup(None)

    def contains_value(self, value: Any) -> bool:
        """Bloom filter membership test (may give false positives, never false negatives)."""
        return self.lookup_value(value)

    def lookup_value(self, value: Any) -> bool:
        a = self._attr
        a.map_fd = self.fd
        a.key = 0
        vb = self._enc_value(value)
        ctypes.memmove(self._vbuf, vb, len(vb))
        a.value = ctypes.addressof(self._vbuf)
        a.flags = 0
        err = sc.bpf_errno(Cmd.MAP_LOOKUP_ELEM, a)
        if err == errno.ENOENT:
            return False
        if err:
            raise sc.raise_errno(Cmd.MAP_LOOKUP_ELEM, err, self._objname())
        return True

    def next_key(self, key: Any = None) -> Any | None:
        """The key after ``key`` (first key when None), or None at the end."""
        a = self._attr
        a.map_fd = self.fd
        if key is None:
            a.key = 0
        else:
            self._enc_key(key)
            a.key = ctypes.addressof(self._kbuf)
        a.value = ctypes.addressof(self._kbuf2)
        a.flags = 0
        err = sc.bpf_errno(Cmd.MAP_GET_NEXT_KEY, a)
        if err == errno.ENOENT:
            return None
        if err:
            raise sc.raise_errno(Cmd.MAP_GET_NEXT_KEY, err, self._objname())
        return self._kbuf2.raw[: self.key_size]

    def _raw_keys(self) -> Iterator[bytes]:
        a = self._attr
        cur: bytes | None = None
        kb = ctypes.create_string_buffer(self.key_size)
        nb = ctypes.create_string_buffer(self.key_size)
        seen = 0
        while True:
            a.map_fd = self.fd
            if cur is None:
                a.key = 0
            else:
                ctypes.memmove(kb, cur, self.key_size)
                a.key = ctypes.addressof(kb)
            a.value = ctypes.addressof(nb)
            a.flags = 0
            err = sc.bpf_errno(Cmd.MAP_GET_NEXT_KEY, a)
            if err == errno.ENOENT:
                return
            if err:
                raise sc.raise_errno(Cmd.MAP_GET_NEXT_KEY, err, self._objname())
            cur = nb.raw[: self.key_size]
            yield cur
            seen += 1
            if seen > 4 * max(self.max_entries, 1) + 1024:  # a map mutated under us
                return

    def keys(self) -> Iterator[Any]:
        if self._can_batch():
            for k, _ in self._batch_items():
                yield self.key_codec.decode(k)
            return
        for k in self._raw_keys():
            yield self.key_codec.decode(k)

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        """All (key, value) pairs, with batch lookups where the kernel has them."""
        if self._can_batch():
            for keys, vals in self._decoded_batches():
                yield from zip(keys, vals, strict=True)
            return
        for k in self._raw_keys():
            raw = self._lookup_raw(k)
            if raw is not None:
                yield self.key_codec.decode(k), self._dec_value(raw)

    def items_raw(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """All (key bytes, value bytes) pairs undecoded; per-CPU maps give one value per
        possible CPU.  For byte-level consumers (ebpf_exporter-style label slicing)."""
        s, n = self._stride, self.value_size
        if self._can_batch():
            pairs: Iterable[tuple[bytes, bytes]] = self._batch_items()
        else:
            pairs = ((k, raw) for k in self._raw_keys()
                     if (raw := self._lookup_raw(k)) is not None)
        for k, v in pairs:
            k = bytes(k)
            if self.percpu:
                yield k, [bytes(v[i * s:i * s + n]) for i in range(self.ncpus)]
            else:
                yield k, bytes(v[:n])

    def use_btf(self, spec: Any, key_type_id: int, value_type_id: int) -> None:
        """Decode keys and values through BTF types (a type whose size differs from the
        map's key/value size is ignored: that side stays bytes)."""
        from .btf.codec import BTFCodec
        for attr, tid, size in (("key_codec", key_type_id, self.key_size),
                                ("value_codec", value_type_id, self.value_size)):
            if not tid:
                continue
            try:
                codec = BTFCodec(spec, tid)
            except BpfkitError:
                continue
            if codec.size == size:
                setattr(self, attr, codec)

    def lookup_raw(self, key: bytes) -> bytes | list[bytes] | None:
        """The undecoded value for key bytes (one per possible CPU for per-CPU maps), or
        None if absent: for byte-level consumers like ``items_raw``."""
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name!r}: key of {len(key)} bytes, the map's keys "
                             f"are {self.key_size}")
        raw = self._lookup_raw(key)
        if raw is None:
            return None
        s, n = self._stride, self.value_size
        if self.percpu:
            return [bytes(raw[i * s:i * s + n]) for i in range(self.ncpus)]
        return bytes(raw[:n])

    def values(self) -> Iterator[Any]:
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        if self.type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            return self.max_entries
        if self._can_batch():
            return sum(1 for _ in self._batch_items(values=False))
        return sum(1 for _ in self._raw_keys())

    def _lookup_raw(self, kraw: bytes) -> bytes | None:
        ctypes.memmove(self._kbuf, kraw, self.key_size)
        return self._read_value(Cmd.MAP_LOOKUP_ELEM, 0)

    def _read_value(self, cmd: int, flags: int) -> bytes | None:
        """Run a command that reads a value for the key already in ``_kbuf`` (none for
        keyless maps): the raw value bytes, or None when the kernel says ENOENT."""
        a = self._attr
        a.map_fd = self.fd
        a.key = ctypes.addressof(self._kbuf) if self.key_size else 0
        a.value = ctypes.addressof(self._vbuf)
        a.flags = flags
        err = sc.bpf_errno(cmd, a)
        if err == errno.ENOENT:
            return None
        if err:
            raise sc.raise_errno(cmd, err, self._objname())
        return self._vbuf.raw[: self._vbuf_size]

    def clear(self) -> None:
        """Delete every key (arrays cannot delete: values are zeroed instead)."""
        if self.type in ARRAY_TYPES and self.type not in FD_VALUE_TYPES:
            zero = bytes(self.value_size)
            for i in range(self.max_entries):
                self.update(i, [zero] * self.ncpus if self.percpu else zero)
            return
        keys = list(self._raw_keys())
        if not keys:
            return
        if self._can_batch():
            try:
                self.delete_batch(keys, raw=True)
                return
            except KernelError:
                pass
        for k in keys:
            a = self._attr
            ctypes.memmove(self._kbuf, k, self.key_size)
            a.map_fd, a.key, a.value, a.flags = self.fd, ctypes.addressof(self._kbuf), 0, 0
            sc.bpf_errno(Cmd.MAP_DELETE_ELEM, a)

    # ----------------------------------------------------------------- batches

    def _can_batch(self) -> bool:
        if self._batch_ok is None:
            if self.type in FD_VALUE_TYPES or self.type in KEYLESS_TYPES or self.key_size == 0:
                self._batch_ok = False
            else:
                try:
                    self.lookup_batch(count=1)
                    self._batch_ok = True
                except KernelError as e:
                    if e.errno == errno.ENOSPC:  # supported; the first bucket holds more than 1
                        self._batch_ok = True
                    elif e.errno in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, ENOTSUPP):
                        self._batch_ok = False
                    else:
                        raise
        return self._batch_ok

    def lookup_batch(self, count: int = 4096, token: bytes | None = None,
                     delete: bool = False) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """One BPF_MAP_LOOKUP(_AND_DELETE)_BATCH call: up to ``count`` raw (key, value) pairs
        and the token to pass next (None when the map is exhausted)."""
        kraw, vraw, n, token = self._lookup_batch_raw(count, token, delete)
        ks, vs = self.key_size, self._vbuf_size
        return [(kraw[i * ks:(i + 1) * ks], vraw[i * vs:(i + 1) * vs]) for i in range(n)], token

    def _lookup_batch_raw(self, count: int, token: bytes | None,
                          delete: bool) -> tuple[bytes, bytes, int, bytes | None]:
        kbufs = ctypes.create_string_buffer(self.key_size * count)
        vbufs = ctypes.create_string_buffer(self._vbuf_size * count)
        tsize = max(self.key_size, 8)
        in_b = ctypes.create_string_buffer(token, tsize) if token is not None else None
        out_b = ctypes.create_string_buffer(tsize)
        a = sc.MapBatchAttr(in_batch=sc.addr(in_b), out_batch=ctypes.addressof(out_b),
                            keys=ctypes.addressof(kbufs), values=ctypes.addressof(vbufs),
                            count=count, map_fd=self.fd)
        cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
        err = sc.bpf_errno(cmd, a)
        done = False
        if err == errno.ENOENT:
            done = True
        elif err:
            raise sc.raise_errno(cmd, err, self._objname())
        n = a.count
        ks, vs = self.key_size, self._vbuf_size
        return (ctypes.string_at(kbufs, n * ks), ctypes.string_at(vbufs, n * vs), n,
                None if done else out_b.raw)

    def _batch_raw(self, chunk: int = 0, delete: bool = False) -> Iterator[tuple[bytes, bytes, int]]:
        """(keys buffer, values buffer, count) per BPF_MAP_LOOKUP(_AND_DELETE)_BATCH call."""
        count = chunk or max(64, min(self.max_entries, 65536))
        token: bytes | None = None
        while True:
            try:
                kraw, vraw, n, token = self._lookup_batch_raw(count, token, delete)
            except KernelError as e:
                if e.errno == errno.ENOSPC and count < 1 << 20:  # a bucket bigger than count
                    count *= 2
                    continue
                raise
            yield kraw, vraw, n
            if token is None:
                return

    def _batch_items(self, values: bool = True, chunk: int = 0) -> Iterator[tuple[bytes, bytes]]:
        ks, vs = self.key_size, self._vbuf_size
        for kraw, vraw, n in self._batch_raw(chunk):
            yield from ((kraw[i * ks:(i + 1) * ks], vraw[i * vs:(i + 1) * vs])
                        for i in range(n))

    def _decoded_batches(self, chunk: int = 0,
                         delete: bool = False) -> Iterator[tuple[list[Any], list[Any]]]:
        """Decoded (keys, values) per batch call: whole columns at once where the codecs
        are plain integers (:func:`column_decoder`), one value at a time otherwise."""
        ks, vs = self.key_size, self._vbuf_size
        kcol = column_decoder(self.key_codec)
        vcol = None if self.percpu else column_decoder(self.value_codec)
        kd, vd = self.key_codec.decode, self._dec_value
        for kraw, vraw, n in self._batch_raw(chunk, delete):
            keys = kcol(kraw, n) if kcol else [kd(kraw[i * ks:(i + 1) * ks]) for i in range(n)]
            vals = vcol(vraw, n) if vcol and vs == self.value_codec.size else \
                [vd(vraw[i * vs:(i + 1) * vs]) for i in range(n)]
            yield keys, vals

    def items_batch(self, chunk: int = 0) -> list[tuple[Any, Any]]:
        """Every entry through batch lookups, decoded."""
        out: list[tuple[Any, Any]] = []
        for keys, vals in self._decoded_batches(chunk):
            out.extend(zip(keys, vals, strict=True))
        return out

    def lookup_and_delete_batch(self, chunk: int = 0) -> list[tuple[Any, Any]]:
        """Drain the map: read and delete every entry with batch operations."""
        out: list[tuple[Any, Any]] = []
        for keys, vals in self._decoded_batches(chunk, delete=True):
            out.extend(zip(keys, vals, strict=True))
        return out

    def update_batch(self, items: Iterable[tuple[Any, Any]] | dict[Any, Any],
                     flags: int = BPF_ANY, elem_flags: int = 0) -> int:
        """Insert many entries with one BPF_MAP_UPDATE_BATCH call; returns the count."""
        pairs = list(items.items()) if isinstance(items, dict) else list(items)
        if not pairs:
            return 0
        kb = b"".join(self.key_codec.encode(k) for k, _ in pairs)
        vb = b"".join(self._enc_value(v) for _, v in pairs)
        kbuf = ctypes.create_string_buffer(kb, len(kb))
        vbuf = ctypes.create_string_buffer(vb, len(vb))
        a = sc.MapBatchAttr(keys=ctypes.addressof(kbuf), values=ctypes.addressof(vbuf),
                            count=len(pairs), map_fd=self.fd, elem_flags=elem_flags | flags)
        sc.bpf(Cmd.MAP_UPDATE_BATCH, a, obj=self._objname())
        return int(a.count)

    def delete_batch(self, keys: Iterable[Any], raw: bool = False) -> int:
        """Delete many keys with one BPF_MAP_DELETE_BATCH call; returns the count deleted."""
        ks = list(keys)
        if not ks:
            return 0
        kb = b"".join(ks) if raw else b"".join(self.key_codec.encode(k) for k in ks)
        kbuf = ctypes.create_string_buffer(kb, len(kb))
        a = sc.MapBatchAttr(keys=ctypes.addressof(kbuf), count=len(ks), map_fd=self.fd)
        sc.bpf(Cmd.MAP_DELETE_BATCH, a, obj=self._objname())
        return int(a.count)

    # ----------------------------------------------------------------- other

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE)."""
        sc.map_freeze(self.fd, self._objname())

    def mmap(self) -> _mmap.mmap:
        """Map an mmapable array's values into memory (BPF_F_MMAPABLE)."""
        if self._mmap is None:
            if not self.flags & BPF_F_MMAPABLE:
                raise BpfkitError(f"map {self.name!r} was not created with BPF_F_MMAPABLE")
            size = self.value_size * self.max_entries
            size = (size + _mmap.PAGESIZE - 1) // _mmap.PAGESIZE * _mmap.PAGESIZE
            try:
                self._mmap = _mmap.mmap(self.fd, size, _mmap.MAP_SHARED,
                                        _mmap.PROT_READ | _mmap.PROT_WRITE)
            except PermissionError:  # frozen or read-only maps
                self._mmap = _mmap.mmap(self.fd, size, _mmap.MAP_SHARED, _mmap.PROT_READ)
        return self._mmap

    def map_fd_of(self, key: Any) -> Map:
        """For map-in-map: open the inner map stored at ``key``."""
        v = self.lookup(key)
        if v is None:
            raise NotFound("BPF_MAP_LOOKUP_ELEM", errno.ENOENT, obj=self._objname())
        inner_id = int.from_bytes(v[:4], "little") if isinstance(v, bytes) else int(v)
        return Map.from_id(inner_id)
