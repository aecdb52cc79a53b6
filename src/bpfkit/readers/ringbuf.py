"""Ring buffers (BPF_MAP_TYPE_RINGBUF), read through mmap; the perf and user rings follow
the same rules.

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

import ctypes
import errno
import mmap as _mmap
import select
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._consts import MapType
from ..errors import BpfkitError, kernel_error
from ._base import PAGE, _Reader
from ._decode import Callback, RecordDecoder

__all__ = [
    "RingBuffer", "RecordBatch", "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ",
]


BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
_LEN_MASK = BPF_RINGBUF_DISCARD_BIT - 1
_FLAGS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

_UNIFORM_MIN = 8  # records needed before the strided-header fast path pays off


# --------------------------------------------------------------------------- decoding




# --------------------------------------------------------------------------- common base



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
        return col

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





# --------------------------------------------------------------------------- user ring buffer



