"""The base every reader shares: epoll, a stop event, pending records, and the consumption
modes (consume, poll, read, iteration, async iteration)."""

from __future__ import annotations

import collections
import mmap as _mmap
import os
import select
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from ._decode import Callback

PAGE = _mmap.PAGESIZE


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
        import asyncio  # here, not at module level: it costs ~40 ms of every start-up
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
