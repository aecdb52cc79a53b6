"""Perf buffers: one mmap'd ring per CPU fed by a BPF_MAP_TYPE_PERF_EVENT_ARRAY, with the
kernel's lost-record counts kept per CPU."""

from __future__ import annotations

import ctypes
import errno
import mmap as _mmap
import os
import select
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._consts import MapType
from ..errors import BpfkitError, kernel_error
from ._base import PAGE, _Reader
from ._decode import Callback, RecordDecoder
from .ringbuf import (
    _U32,
    _U64,
)

# perf_event_mmap_page: data_head at 1024, data_tail at 1032 (include/uapi/linux/perf_event.h)
_PERF_DATA_HEAD = 1024


_PERF_DATA_TAIL = 1032


PERF_RECORD_LOST = 2


PERF_RECORD_SAMPLE = 9


_PERF_HDR = struct.Struct("<IHH")


def _perf_event_open_raw(attr: Any, cpu: int) -> int:
    """perf_event_open via the attach module (shared wrapper with good errors)."""
    from ..perf_event import perf_event_open
    return perf_event_open(attr, pid=-1, cpu=cpu, what=f"BPF output perf event on CPU {cpu}")


class _PerfRing:
    """One CPU's perf event and its mmap'd ring."""

    def __init__(self, cpu: int, page_count: int, wakeup_events: int,
                 watermark: int) -> None:
        from ..perf_event import (
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
            from ..host.cpus import online_cpus
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
            from ..perf_event import ioctl_enable
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
