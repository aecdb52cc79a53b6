"""Getting data out of BPF programs: ring buffers, perf buffers and user ring buffers.

Why pure Python can keep up: records are found by reading the rings through ``mmap``
(no system call per record), the consumer position is committed once per chunk of
records, runs of equal-sized records are recognised with one strided read of their
headers, and ``epoll`` is only entered when the rings are empty.

Memory ordering.  The kernel publishes a record by storing its header with release
semantics and reads ``consumer_pos`` with acquire semantics.  We read positions and
headers with plain aligned loads and commit ``consumer_pos`` with a plain aligned 8-byte
store through a ``ctypes.c_uint64`` placed on the mapping.  On x86-64 (TSO) plain loads are
acquires and plain stores are releases.  On arm64 the Python interpreter executes many
instructions and at least one full barrier (the GIL/eval loop atomics) between reading a
record and storing the new position, which is what makes this practically safe there
too; other weakly ordered architectures are not claimed to be supported.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import mmap as _mmap
import os
import select
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._consts import MapType
from ..errors import BpfkitError, kernel_error

__all__ = [
    "RingBuffer", "PerfBuffer", "UserRingBuffer", "UserSample", "RecordBatch", "RecordDecoder",
    "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ",
]

PAGE = _mmap.PAGESIZE

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
_LEN_MASK = BPF_RINGBUF_DISCARD_BIT - 1
_FLAGS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT

# perf_event_mmap_page: data_head at 1024, data_tail at 1032 (include/uapi/linux/perf_event.h)
_PERF_DATA_HEAD = 1024
_PERF_DATA_TAIL = 1032
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_PERF_HDR = struct.Struct("<IHH")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

_UNIFORM_MIN = 8  # records needed before the strided-header fast path pays off

Record = Any
Callback = Callable[[Any], Any]


# --------------------------------------------------------------------------- decoding


def _resolve_record(map_: Any, name: str) -> Callable[[bytes], Any]:
    """Decoder for the BTF type ``name`` of the collection ``map_`` came from.

    Uses the loader's per-map BTF (``map.btf`` or ``map.spec.btf``) and the BTF value
    codec (``bpfkit.btf.codec.decoder_for``); raises a clear error when either is absent.
    """
    spec = getattr(map_, "btf", None)
    if spec is None:
        spec = getattr(getattr(map_, "spec", None), "btf", None)
    if spec is None:
        raise BpfkitError(
            f"record={name!r} names a BTF type, but map {getattr(map_, 'name', '?')!r} carries "
            "no BTF: load it with bpfkit.load() from an object compiled with -g, or pass a "
            "ctypes type or a callable")
    try:
        from ..btf.codec import decoder_for  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise BpfkitError("record= by BTF type name needs bpfkit.btf.codec, which this "
                          "installation lacks: pass a ctypes type or a callable") from None
    from ..errors import BTFError
    try:
        dec = decoder_for(spec, name)  # accepts "event", "struct event", "union u"...
    except BTFError as e:
        raise BpfkitError(f"record type {name!r} is not usable from the BTF of map "
                          f"{getattr(map_, 'name', '?')!r}: {e}") from None
    return dec  # type: ignore[no-any-return]


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


# --------------------------------------------------------------------------- common base


class _Reader:
    """epoll, a stop event, pending records and the consumption modes shared by readers."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = select.epoll()
        self._stop_fd = -1
        self._pending: collections.deque[tuple[Any, Any]] = collections.deque()
        self._closed = False

    # -- subclass hooks
    def _fill(self, out: list[tuple[Any, Any]], ready: Iterable[int] | None) -> int:
        """Append (callback, record) pairs for everything available; commit; return count."""
        raise NotImplementedError

    def _has_data(self) -> bool:
        raise NotImplementedError

    # -- lifecycle
    def fileno(self) -> int:
        """The epoll fd: readable when any ring has data (for select/poll/asyncio)."""
        if self._epoll is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._epoll.fileno()

    def stop(self) -> None:
        """Wake a blocked ``poll``/iterator (from a callback, thread or signal handler)."""
        if self._epoll is None:
            return
        if self._stop_fd < 0:
            self._stop_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._stop_fd, select.EPOLLIN)
        os.eventfd_write(self._stop_fd, 1)

    def _stopped(self) -> bool:
        if self._stop_fd < 0:
            return False
        try:
            os.eventfd_read(self._stop_fd)
            return True
        except BlockingIOError:
            return False

    def close(self) -> None:
        self._closed = True
        if self._stop_fd >= 0:
            os.close(self._stop_fd)
            self._stop_fd = -1
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- waiting
    def _wait(self, timeout: float | None) -> list[int] | None:
        """Block in epoll (GIL released) until data, stop or timeout; None means stop."""
        if self._epoll is None:
            raise ValueError(f"{type(self).__name__} is closed")
        evs = self._epoll.poll(-1 if timeout is None else max(timeout, 0.0))
        fds = [fd for fd, _ in evs]
        if self._stop_fd >= 0 and self._stop_fd in fds:
            self._stopped()
            return None
        return fds

    # -- consumption
    def _deliver(self, items: list[tuple[Any, Any]], callback: Callback | None) -> int:
        n = 0
        try:
            for i, (cb, rec) in enumerate(items):
                f = callback or cb
                n = i + 1
                if f is not None:
                    f(rec)
        except BaseException:
            # Records after the failing one stay pending for the next call.
            self._pending.extendleft(reversed(items[n:]))
            raise
        return n

    def consume(self, callback: Callback | None = None) -> int:
        """Process every record available now, without waiting; returns the count."""
        items: list[tuple[Any, Any]] = []
        if self._pending:
            items.extend(self._pending)
            self._pending.clear()
        self._fill(items, None)
        return self._deliver(items, callback)

    def poll(self, callback: Callback | None = None, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) for records, then process them.

        Returns the number processed (0 on timeout or ``stop()``).  The wait happens in
        ``epoll_wait`` with the GIL released; Ctrl-C raises KeyboardInterrupt from it with
        no record lost.
        """
        n = self.consume(callback)
        if n:
            return n
        ready = self._wait(timeout)
        if ready is None:
            return 0
        return self.consume(callback)

    def read(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield decoded records; stop after ``timeout`` seconds without one, or ``stop()``."""
        pend = self._pending
        while True:
            if not pend:
                items: list[tuple[Any, Any]] = []
                self._fill(items, None)
                if not items:
                    if self._wait(timeout) is None:
                        return
                    self._fill(items, None)
                    if not items:
                        if timeout is not None:
                            return
                        continue
                pend.extend(items)
            while pend:
                yield pend.popleft()[1]

    def __iter__(self) -> Iterator[Any]:
        return self.read(None)

    # -- asyncio
    async def _wait_async(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = self.fileno()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)

    async def poll_async(self, callback: Callback | None = None,
                         timeout: float | None = None) -> int:
        """``await`` records without threads: the epoll fd is watched by the event loop."""
        n = self.consume(callback)
        if n:
            return n
        if not await self._wait_async(timeout):
            return 0
        if self._stopped():
            return 0
        return self.consume(callback)

    async def read_async(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """``async for rec in reader.read_async()``; ends after ``timeout`` idle seconds."""
        pend = self._pending
        while True:
            if not pend:
                items: list[tuple[Any, Any]] = []
                self._fill(items, None)
                if not items:
                    if not await self._wait_async(timeout):
                        return
                    if self._stopped():
                        return
                    continue
                pend.extend(items)
            while pend:
                yield pend.popleft()[1]

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.read_async(None)


# --------------------------------------------------------------------------- ring buffers


class _Ring:
    """One BPF_MAP_TYPE_RINGBUF mapped into memory."""

    def __init__(self, map_: Any, record: Any, callback: Callback | None) -> None:
        mtype = getattr(map_, "type", MapType.RINGBUF)
        if mtype != MapType.RINGBUF:
            raise BpfkitError(f"map {getattr(map_, 'name', '?')!r} is a {mtype!r}, "
                              "not a RINGBUF")
        self.map = map_
        self.fd = int(map_.fd)
        size = int(map_.max_entries)
        if size <= 0 or size & (size - 1) or size % PAGE:
            raise BpfkitError(f"ring buffer size {size} is not a power-of-two number of pages")
        self.size = size
        self.mask = size - 1
        self.decoder = RecordDecoder(record, map_)
        self.callback = callback
        self.discarded = 0
        name = getattr(map_, "name", "")
        try:
            self.cons_mm = _mmap.mmap(self.fd, PAGE, _mmap.MAP_SHARED,
                                      _mmap.PROT_READ | _mmap.PROT_WRITE, offset=0)
        except OSError as e:
            raise kernel_error("mmap", e.errno or errno.EINVAL, obj=f"ring buffer {name!r}",
                               hint="the consumer page of a ring buffer maps read-write")
        try:
            # Producer page + data pages; the kernel maps the data twice in a row, so a
            # record that wraps at the end of the ring is contiguous here.
            self.mm = _mmap.mmap(self.fd, PAGE + 2 * size, _mmap.MAP_SHARED, _mmap.PROT_READ,
                                 offset=PAGE)
        except OSError as e:
            self.cons_mm.close()
            raise kernel_error("mmap", e.errno or errno.EINVAL, obj=f"ring buffer {name!r}")
        self._cons = ctypes.c_uint64.from_buffer(self.cons_mm)
        self.pos = int(self._cons.value)
        self._mv = memoryview(self.mm)
        self._prod = self._mv[:8].cast("Q")
        self._hdr = self._mv[PAGE:].cast("I")  # u32 view of the data area (headers)

    def commit(self, pos: int) -> None:
        self.pos = pos
        self._cons.value = pos  # 8-byte aligned store: release on x86-64 (see module doc)

    def avail(self) -> int:
        return int(self._prod[0]) - self.pos

    def scan(self, limit: int = 1 << 62) -> tuple[list[tuple[int, int]], list[range], int, int]:
        """Find committed records from the consumer position.

        Returns (singles [(offset, length)], runs [range of offsets] with their common
        length in ``run_len`` order, run length, end position).  Offsets are into ``mm``.
        To keep things simple a call returns either one uniform run (fast path) or
        singles, never both.
        """
        pos = self.pos
        prod = int(self._prod[0])
        hdr = self._hdr
        mask = self.mask
        base = PAGE + BPF_RINGBUF_HDR_SZ
        if pos >= prod:
            return [], [], 0, pos
        off = pos & mask
        h0 = hdr[off >> 2]
        if not h0 & _FLAGS:
            stride = (h0 + 15) & ~7
            n = min((prod - pos) // stride, limit)
            if n >= _UNIFORM_MIN:
                w = stride >> 2
                heads = hdr[off >> 2:(off >> 2) + n * w:w].tolist()
                if heads.count(h0) != n:
                    k = 0
                    for k, h in enumerate(heads):  # noqa: B007 - first mismatch
                        if h != h0:
                            break
                    n = k
                if n >= _UNIFORM_MIN:
                    start = base + off
                    return [], [range(start, start + n * stride, stride)], h0, pos + n * stride
        singles: list[tuple[int, int]] = []
        discarded = 0
        while pos < prod and len(singles) < limit:
            off = pos & mask
            h = hdr[off >> 2]
            if h & BPF_RINGBUF_BUSY_BIT:
                break
            ln = h & _LEN_MASK
            if not h & BPF_RINGBUF_DISCARD_BIT:
                singles.append((base + off, ln))
            else:
                discarded += 1
            pos += (ln + 15) & ~7
        self.discarded += discarded
        return singles, [], 0, pos

    def close(self) -> None:
        for v in (self._prod, self._hdr, self._mv):
            v.release()
        del self._cons
        self.cons_mm.close()
        try:
            self.mm.close()
        except BufferError:
            pass  # batch views still held by the caller: unmapped when they go


class RecordBatch(Sequence[memoryview]):
    """Records of one contiguous chunk of a ring, valid until committed.

    ``buffer`` is the chunk (headers included), ``offsets`` where each record's data
    starts in it and ``size`` the common record length (None when lengths differ).
    Indexing/iterating gives memoryviews; ``column``/``unpack`` decode every record at C
    speed.  Everything handed out is released at commit, so a stale view raises
    ValueError instead of reading memory the producer reused.
    """

    def __init__(self, ring: _Ring | None, region: memoryview, offsets: Sequence[int],
                 lengths: Sequence[int] | int, end: int) -> None:
        self._ring = ring
        self.buffer = region
        self.offsets = offsets
        self._lengths = lengths
        self.size: int | None = lengths if isinstance(lengths, int) else None
        self._end = end
        self._views: list[memoryview] | None = None
        self._extra: list[memoryview] = []
        self.committed = False

    def __len__(self) -> int:
        return len(self.offsets)

    def length(self, i: int) -> int:
        ln = self._lengths
        return ln if isinstance(ln, int) else ln[i]

    def _all(self) -> list[memoryview]:
        if self._views is None:
            if self.committed:
                raise ValueError("batch already committed")
            buf, ln = self.buffer, self._lengths
            if isinstance(ln, int):
                self._views = [buf[o:o + ln] for o in self.offsets]
            else:
                self._views = [buf[o:o + n] for o, n in zip(self.offsets, ln, strict=True)]
        return self._views

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self._all())

    def column_view(self, fmt: str, offset: int = 0) -> memoryview | None:
        """Zero-copy strided memoryview of one scalar field across equal-sized records.

        None when records differ in size or the field is misaligned.  The view reads the
        ring directly and is released at commit.
        """
        fmt = fmt.lstrip("@=<")
        if len(fmt) != 1:
            raise BpfkitError(f"a column is one native format char, not {fmt!r}")
        size = struct.calcsize(fmt)
        if self.size is None or not len(self):
            return None
        if offset < 0 or offset + size > self.size:
            raise BpfkitError(f"field at {offset}+{size} is beyond the {self.size}-byte record")
        first = self.offsets[0] + offset
        stride = self.offsets[1] - self.offsets[0] if len(self) > 1 else size
        if first % size or stride % size or len(self.buffer) % size:
            return None
        col = self.buffer.cast(fmt)[  # type: ignore[call-overload]
            first // size::stride // size][:len(self)]
        self._extra.append(col)
        return col  # type: ignore[no-any-return]

    def column(self, fmt: str, offset: int = 0) -> list[Any]:
        """One scalar field (struct format char ``fmt`` at ``offset``) of every record, as
        a list of Python values (C speed for equal-sized records; safe after commit)."""
        col = self.column_view(fmt, offset)
        if col is not None:
            out: list[Any] = col.tolist()
            return out
        fmt = fmt.lstrip("@=<")
        size = struct.calcsize(fmt)
        st = struct.Struct("<" + fmt)
        res = []
        for i, o in enumerate(self.offsets):
            if offset < 0 or offset + size > self.length(i):
                raise BpfkitError(f"record {i} is too short for a field at {offset}+{size}")
            res.append(st.unpack_from(self.buffer, o + offset)[0])
        return res

    def unpack(self, fmt: str) -> list[tuple[Any, ...]]:
        """``struct`` format ``fmt`` (little-endian unless it says otherwise) per record."""
        order = "<"
        if fmt[:1] in "@=<>!":
            order, fmt = fmt[0], fmt[1:]
        need = struct.calcsize(order + fmt)
        if self.size is not None and len(self) > 1:
            if need > self.size:
                raise BpfkitError(f"format {fmt!r} needs {need} bytes, records have {self.size}")
            stride = self.offsets[1] - self.offsets[0]
            lead = self.offsets[0]
            st = struct.Struct(f"{order}{lead}x{fmt}{stride - lead - need}x")
            if st.size == stride:
                return list(st.iter_unpack(self.buffer[:stride * len(self)]))
        st = struct.Struct(order + fmt)
        out = []
        for i, o in enumerate(self.offsets):
            if need > self.length(i):
                raise BpfkitError(f"record {i} has {self.length(i)} bytes, {fmt!r} needs {need}")
            out.append(st.unpack_from(self.buffer, o))
        return out

    def tobytes(self) -> list[bytes]:
        """Copies of every record."""
        buf, ln = self.buffer, self._lengths
        if isinstance(ln, int):
            return [buf[o:o + ln].tobytes() for o in self.offsets]
        return [buf[o:o + n].tobytes() for o, n in zip(self.offsets, ln, strict=True)]

    def commit(self) -> None:
        """Release every view and give the space back to the producer."""
        if self.committed:
            return
        self.committed = True
        for v in self._views or ():
            v.release()
        for v in self._extra:
            v.release()
        self.buffer.release()
        if self._ring is not None:
            self._ring.commit(self._end)


class RingBuffer(_Reader):
    """Consumer of one or several BPF ring buffers (BPF_MAP_TYPE_RINGBUF).

    ``record`` decodes each record (None: bytes; a ctypes type; a callable taking bytes;
    a BTF type name of the map's collection).  ``callback`` is called per record by
    :meth:`poll`/:meth:`consume`.  Iterate (``for rec in rb``, ``rb.read(timeout=1)``,
    ``async for rec in rb``) or take zero-copy batches (:meth:`consume_batch`,
    :meth:`batch`).
    """

    def __init__(self, map_or_maps: Any, record: Any = None,
                 callback: Callback | None = None) -> None:
        super().__init__()
        self._rings: list[_Ring] = []
        self._by_fd: dict[int, _Ring] = {}
        self._record = record
        self._callback = callback
        maps = map_or_maps if isinstance(map_or_maps, (list, tuple)) else [map_or_maps]
        try:
            for m in maps:
                self.add(m)
        except BaseException:
            self.close()
            raise

    def add(self, map_: Any, record: Any = None, callback: Callback | None = None) -> None:
        """Poll another ring buffer too (its own decoder/callback, else the reader's)."""
        if self._epoll is None:
            raise ValueError("RingBuffer is closed")
        ring = _Ring(map_, record if record is not None else self._record,
                     callback if callback is not None else self._callback)
        try:
            self._epoll.register(ring.fd, select.EPOLLIN)
        except OSError as e:
            ring.close()
            raise kernel_error("epoll_ctl", e.errno or errno.EINVAL,
                               obj=f"ring buffer {getattr(map_, 'name', '')!r}")
        self._rings.append(ring)
        self._by_fd[ring.fd] = ring

    @property
    def discarded(self) -> int:
        """Records the program discarded (bpf_ringbuf_discard): skipped, never delivered."""
        return sum(r.discarded for r in self._rings)

    @property
    def lost(self) -> int:
        """Always 0: a full ring buffer fails the *producer* (bpf_ringbuf_output/reserve
        return an error), so drops must be counted by the BPF program itself."""
        return 0

    def available(self) -> int:
        """Bytes produced but not yet consumed, over all rings."""
        return sum(r.avail() for r in self._rings)

    def _has_data(self) -> bool:
        return any(r.avail() > 0 for r in self._rings)

    def _fill(self, out: list[tuple[Any, Any]], ready: Iterable[int] | None) -> int:
        n0 = len(out)
        for ring in self._rings:
            cb = ring.callback
            dec = ring.decoder
            mm = ring.mm
            while True:
                singles, runs, run_len, end = ring.scan()
                if end == ring.pos:
                    break
                recs: list[Any] = []
                if runs:
                    dec.uniform(mm, runs[0], run_len, recs)
                else:
                    one = dec.one
                    recs = [one(mm, o, ln) for o, ln in singles]
                out += [(cb, r) for r in recs]
                ring.commit(end)  # records are copies: give the space back at once
        return len(out) - n0

    # -- zero-copy batches

    def _batches(self, limit: int) -> Iterator[RecordBatch]:
        """Yield one RecordBatch per contiguous chunk; the caller commits each."""
        left = limit
        for ring in self._rings:
            while left > 0:
                start = ring.pos
                singles, runs, run_len, end = ring.scan(left)
                if end == start:
                    break
                a = PAGE + (start & ring.mask)
                region = ring._mv[a:a + (end - start)]
                if runs:
                    r = runs[0]
                    offs: Sequence[int] = range(r.start - a, r.stop - a, r.step)
                    lens: Sequence[int] | int = run_len
                else:
                    offs = [o - a for o, _ in singles]
                    lens = [ln for _, ln in singles]
                left -= len(offs)
                yield RecordBatch(ring, region, offs, lens, end)

    def consume_batch(self, fn: Callable[[RecordBatch], Any], limit: int = 1 << 20) -> int:
        """Call ``fn(batch)`` for every contiguous chunk of available records (no copies).

        A :class:`RecordBatch` is a sequence of memoryviews into the ring plus fast
        whole-batch decoders (``column``, ``unpack``).  Its views are released and the
        consumer position is committed (once per batch) when ``fn`` returns.  Returns the
        number of records.
        """
        if self._pending:
            raise BpfkitError("records decoded by an interrupted poll are pending: drain them "
                              "with poll()/read() before using batches")
        n = 0
        for b in self._batches(limit):
            try:
                fn(b)
            finally:
                b.commit()
            n += len(b)
        return n

    @contextmanager
    def batch(self, limit: int = 1 << 20, timeout: float | None = 0) -> Iterator[RecordBatch]:
        """``with rb.batch() as b:`` one zero-copy batch, committed when the block ends.

        Only the first ring with data contributes; ``timeout`` waits for data when the
        rings are empty (0: never wait).  An empty batch is yielded when nothing came.
        """
        if self._pending:
            raise BpfkitError("records decoded by an interrupted poll are pending")
        if timeout != 0 and not self._has_data():
            self._wait(timeout)
        b = next(self._batches(limit), None)
        if b is None:
            b = RecordBatch(None, memoryview(b""), [], [], 0)
        try:
            yield b
        finally:
            b.commit()

    def close(self) -> None:
        for r in self._rings:
            r.close()
        self._rings.clear()
        self._by_fd.clear()
        super().close()

    def __repr__(self) -> str:
        names = [getattr(r.map, "name", "?") for r in self._rings]
        return f"<RingBuffer {names} {'closed' if self._closed else 'open'}>"


# --------------------------------------------------------------------------- perf buffers


def _perf_event_open_raw(attr: Any, cpu: int) -> int:
    """perf_event_open via the attach module (shared wrapper with good errors)."""
    from ..attach.perf import perf_event_open
    return perf_event_open(attr, pid=-1, cpu=cpu, what=f"BPF output perf event on CPU {cpu}")


class _PerfRing:
    """One CPU's perf event and its mmap'd ring."""

    def __init__(self, cpu: int, page_count: int, wakeup_events: int,
                 watermark: int) -> None:
        from ..attach.perf import (
            ATTR_WATERMARK,
            PERF_COUNT_SW_BPF_OUTPUT,
            PERF_SAMPLE_RAW,
            PERF_TYPE_SOFTWARE,
            perf_event_attr,
        )
        self.cpu = cpu
        flags = 0
        wake = max(wakeup_events, 1)
        if watermark:
            flags |= ATTR_WATERMARK
            wake = watermark
        attr = perf_event_attr(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, sample_period=1,
                               sample_type=PERF_SAMPLE_RAW, flags=flags, wakeup_events=wake)
        self.fd = _perf_event_open_raw(attr, cpu)
        self.size = page_count * PAGE
        self.mask = self.size - 1
        try:
            self.mm = _mmap.mmap(self.fd, PAGE + self.size, _mmap.MAP_SHARED,
                                 _mmap.PROT_READ | _mmap.PROT_WRITE)
        except OSError as e:
            os.close(self.fd)
            raise kernel_error("mmap", e.errno or errno.EINVAL, obj=f"perf buffer of CPU {cpu}",
                               hint="page_count pages must fit in perf_event_mlock_kb")
        self._tail = ctypes.c_uint64.from_buffer(self.mm, _PERF_DATA_TAIL)
        self._mv = memoryview(self.mm)
        self._head = self._mv[_PERF_DATA_HEAD:_PERF_DATA_HEAD + 8].cast("Q")
        self.tail = int(self._tail.value)
        self.lost = 0

    def avail(self) -> int:
        return int(self._head[0]) - self.tail

    def commit(self, pos: int) -> None:
        self.tail = pos
        self._tail.value = pos

    def close(self) -> None:
        self._head.release()
        self._mv.release()
        del self._tail
        try:
            self.mm.close()
        except BufferError:
            pass
        os.close(self.fd)


class PerfBuffer(_Reader):
    """Consumer of a BPF_MAP_TYPE_PERF_EVENT_ARRAY fed by ``bpf_perf_event_output``.

    One BPF-output perf event per online CPU is stored in the map at its CPU index.
    Samples carry the raw data the program gave, padded by the kernel to 4 bytes short
    of an 8-byte multiple (as libbpf and BCC hand it out).  ``lost_callback(cpu, count)``
    hears about PERF_RECORD_LOST; ``lost``/``lost_per_cpu`` total them.  With
    ``with_cpu=True`` callbacks and iterators get ``(cpu, record)``.
    """

    def __init__(self, map_: Any, callback: Callback | None = None,
                 lost_callback: Callable[[int, int], Any] | None = None, page_count: int = 8,
                 wakeup_events: int = 1, watermark: int = 0, record: Any = None,
                 cpus: Sequence[int] | None = None, with_cpu: bool = False) -> None:
        super().__init__()
        mtype = getattr(map_, "type", MapType.PERF_EVENT_ARRAY)
        if mtype != MapType.PERF_EVENT_ARRAY:
            raise BpfkitError(f"map {getattr(map_, 'name', '?')!r} is a {mtype!r}, "
                              "not a PERF_EVENT_ARRAY")
        if page_count <= 0 or page_count & (page_count - 1):
            raise BpfkitError(f"page_count must be a power of two, not {page_count}")
        self.map = map_
        self._callback = callback
        self.lost_callback = lost_callback
        self.with_cpu = with_cpu
        self.decoder = RecordDecoder(record, map_)
        self._rings: list[_PerfRing] = []
        self._set_keys: list[int] = []
        if cpus is None:
            from ..attach.perf import online_cpus
            cpus = online_cpus()
        try:
            max_entries = int(getattr(map_, "max_entries", 1 << 30))
            for cpu in cpus:
                if cpu >= max_entries:
                    continue  # the map is smaller than the CPU count: those CPUs can't output
                ring = _PerfRing(cpu, page_count, wakeup_events, watermark)
                self._rings.append(ring)
                assert self._epoll is not None
                self._epoll.register(ring.fd, select.EPOLLIN)
                map_.update(cpu, ring.fd.to_bytes(4, "little"))
                self._set_keys.append(cpu)
            from ..attach.perf import ioctl_enable
            for ring in self._rings:
                ioctl_enable(ring.fd)
        except BaseException:
            self.close()
            raise
        if not self._rings:
            self.close()
            raise BpfkitError(f"PERF_EVENT_ARRAY {getattr(map_, 'name', '?')!r} has no slot "
                              "for any online CPU")

    @property
    def lost_per_cpu(self) -> dict[int, int]:
        return {r.cpu: r.lost for r in self._rings}

    @property
    def lost(self) -> int:
        """Samples the kernel dropped because a CPU's ring was full."""
        return sum(r.lost for r in self._rings)

    def _has_data(self) -> bool:
        return any(r.avail() > 0 for r in self._rings)

    def _fill(self, out: list[tuple[Any, Any]], ready: Iterable[int] | None) -> int:
        n0 = len(out)
        cb = self._callback
        dec = self.decoder
        with_cpu = self.with_cpu
        hdr = _PERF_HDR.unpack_from
        u32 = _U32.unpack_from
        u64 = _U64.unpack_from
        for ring in self._rings:
            head = int(ring._head[0])
            tail = ring.tail
            if tail >= head:
                continue
            mm = ring.mm
            size, mask = ring.size, ring.mask
            cpu = ring.cpu
            recs: list[Any] = []
            lost = 0
            while tail < head:
                off = tail & mask
                typ, _misc, rsize = hdr(mm, PAGE + off)
                if rsize < 8:
                    raise BpfkitError(f"corrupt perf record of size {rsize} on CPU {cpu}")
                if off + rsize <= size:
                    buf: Any = mm
                    p = PAGE + off
                else:  # wraps around the end of the ring: reassemble
                    buf = mm[PAGE + off:PAGE + size] + mm[PAGE:PAGE + off + rsize - size]
                    p = 0
                if typ == PERF_RECORD_SAMPLE:
                    (raw,) = u32(buf, p + 8)
                    recs.append(dec.one(buf, p + 12, raw))
                elif typ == PERF_RECORD_LOST:
                    (n,) = u64(buf, p + 16)
                    lost += n
                tail += rsize
            ring.commit(tail)
            if lost:
                ring.lost += lost
                if self.lost_callback is not None:
                    self.lost_callback(cpu, lost)
            if with_cpu:
                out += [(cb, (cpu, r)) for r in recs]
            else:
                out += [(cb, r) for r in recs]
        return len(out) - n0

    def close(self) -> None:
        for cpu in self._set_keys:
            try:
                self.map.delete(cpu)
            except Exception:  # noqa: BLE001 - the map may be closed already
                pass
        self._set_keys.clear()
        for r in self._rings:
            r.close()
        self._rings.clear()
        super().close()

    def __repr__(self) -> str:
        return (f"<PerfBuffer {getattr(self.map, 'name', '?')!r} cpus={len(self._rings)} "
                f"{'closed' if self._closed else 'open'}>")


# --------------------------------------------------------------------------- user ring buffer


class UserSample:
    """A reserved region of a user ring buffer: fill ``data`` then ``submit()``/``discard()``."""

    __slots__ = ("_urb", "hdr_off", "size", "data", "done")

    def __init__(self, urb: UserRingBuffer, hdr_off: int, size: int, data: memoryview) -> None:
        self._urb = urb
        self.hdr_off = hdr_off
        self.size = size
        self.data = data
        self.done = False

    def submit(self) -> None:
        self._urb.submit(self)

    def discard(self) -> None:
        self._urb.discard(self)

    def __enter__(self) -> UserSample:
        return self

    def __exit__(self, exc_type: object, *a: object) -> None:
        if not self.done:
            if exc_type is None:
                self.submit()
            else:
                self.discard()


class UserRingBuffer:
    """Producer side of a BPF_MAP_TYPE_USER_RINGBUF, drained by ``bpf_user_ringbuf_drain``.

    Samples are reserved in order, written in place and submitted (or discarded); the
    kernel stops draining at the first sample still reserved.  Not thread-safe: the ring
    has a single producer.
    """

    def __init__(self, map_: Any) -> None:
        mtype = getattr(map_, "type", MapType.USER_RINGBUF)
        if mtype != MapType.USER_RINGBUF:
            raise BpfkitError(f"map {getattr(map_, 'name', '?')!r} is a {mtype!r}, "
                              "not a USER_RINGBUF")
        self.map = map_
        self.fd = int(map_.fd)
        size = int(map_.max_entries)
        self.size = size
        self.mask = size - 1
        self._closed = False
        name = getattr(map_, "name", "")
        try:
            self.cons_mm = _mmap.mmap(self.fd, PAGE, _mmap.MAP_SHARED, _mmap.PROT_READ, offset=0)
        except OSError as e:
            raise kernel_error("mmap", e.errno or errno.EINVAL, obj=f"user ring buffer {name!r}")
        try:
            self.mm = _mmap.mmap(self.fd, PAGE + 2 * size, _mmap.MAP_SHARED,
                                 _mmap.PROT_READ | _mmap.PROT_WRITE, offset=PAGE)
        except OSError as e:
            self.cons_mm.close()
            raise kernel_error("mmap", e.errno or errno.EINVAL, obj=f"user ring buffer {name!r}",
                               hint="producer page and data map read-write")
        self._cmv = memoryview(self.cons_mm)
        self._cons = self._cmv[:8].cast("Q")
        self._prod = ctypes.c_uint64.from_buffer(self.mm)
        self._mv = memoryview(self.mm)
        self.pos = int(self._prod.value)
        self._epoll: select.epoll | None = select.epoll()
        self._epoll.register(self.fd, select.EPOLLOUT)
        self._outstanding: list[UserSample] = []

    def free_space(self) -> int:
        return self.size - (self.pos - int(self._cons[0]))

    def reserve(self, size: int) -> UserSample | None:
        """Reserve ``size`` bytes; None when the ring has no room (see reserve_blocking)."""
        if self._closed:
            raise ValueError("UserRingBuffer is closed")
        if size <= 0 or size > _LEN_MASK:
            raise BpfkitError(f"invalid sample size {size}")
        total = (size + BPF_RINGBUF_HDR_SZ + 7) & ~7
        if total > self.size:
            raise BpfkitError(f"a {size}-byte sample cannot fit in a {self.size}-byte ring")
        if total > self.free_space():
            return None
        off = self.pos & self.mask
        hdr_off = PAGE + off
        # Header: length with BUSY set, pg_off 0; published by moving producer_pos.
        struct.pack_into("<II", self.mm, hdr_off, size | BPF_RINGBUF_BUSY_BIT, 0)
        self.pos += total
        self._prod.value = self.pos  # aligned 8-byte store (release on x86-64)
        s = UserSample(self, hdr_off, size, self._mv[hdr_off + 8:hdr_off + 8 + size])
        self._outstanding.append(s)
        return s

    def reserve_blocking(self, size: int, timeout: float | None = None) -> UserSample | None:
        """Reserve, waiting (epoll EPOLLOUT) for the kernel to drain; None on timeout."""
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            s = self.reserve(size)
            if s is not None:
                return s
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            assert self._epoll is not None
            self._epoll.poll(-1 if left is None else min(left, 0.05))

    def _finish(self, s: UserSample, discard: bool) -> None:
        if s.done:
            raise BpfkitError("sample already submitted or discarded")
        s.done = True
        s.data.release()
        ln = s.size | (BPF_RINGBUF_DISCARD_BIT if discard else 0)
        hdr = ctypes.c_uint32.from_buffer(self.mm, s.hdr_off)
        hdr.value = ln  # clears BUSY: the kernel may now consume it
        del hdr
        try:
            self._outstanding.remove(s)
        except ValueError:
            pass

    def submit(self, s: UserSample) -> None:
        self._finish(s, False)

    def discard(self, s: UserSample) -> None:
        self._finish(s, True)

    def write(self, data: bytes | bytearray | memoryview, timeout: float | None = 0) -> bool:
        """Copy ``data`` in as one sample; False if no room (after ``timeout`` seconds)."""
        n = len(data)
        s = self.reserve(n) if timeout == 0 else self.reserve_blocking(n, timeout)
        if s is None:
            return False
        s.data[:] = data
        self.submit(s)
        return True

    def fileno(self) -> int:
        if self._epoll is None:
            raise ValueError("UserRingBuffer is closed")
        return self._epoll.fileno()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in list(self._outstanding):
            if not s.done:
                self.discard(s)
        self._cons.release()
        self._cmv.release()
        self._mv.release()
        del self._prod
        self.cons_mm.close()
        try:
            self.mm.close()
        except BufferError:
            pass
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    def __enter__(self) -> UserRingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
