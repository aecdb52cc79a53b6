"""User ring buffers: records written from user space for a BPF program to drain with
``bpf_user_ringbuf_drain``."""

from __future__ import annotations

import ctypes
import errno
import mmap as _mmap
import select
import struct
from typing import Any

from .._consts import MapType
from ..errors import BpfkitError, kernel_error
from ._base import PAGE
from .ringbuf import (
    _LEN_MASK,
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
    BPF_RINGBUF_HDR_SZ,
)


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
