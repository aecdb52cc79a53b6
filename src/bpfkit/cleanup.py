"""Attachments that outlive their file descriptors, and closing things on exit.

Most bpf attachments die with the process (a bpf_link fd closes).  A few do not: legacy
tc filters, XDP programs set over netlink, tracefs probe events.  For those we keep

* a **state record** per attachment in ``/run/bpfkit`` (override with ``BPFKIT_RUN_DIR``):
  who made it (pid + process start time, so a recycled pid is not mistaken for the
  owner), its kind and the data needed to undo it.  The record is written *before* the
  attachment as an **intent** (:func:`record` with ``state="intent"``) and confirmed with
  what the kernel chose once it exists (:func:`confirm`), so a process killed at any
  point between the two leaves a record: the cleaner of an intent looks for the
  attachment, which may or may not exist.  :func:`cleanup_stale` undoes the attachments
  of dead owners with the cleaner registered for their kind, and only touches what the
  record proves is bpfkit's;
* a set of **live** objects closed at interpreter exit and on SIGTERM.  The SIGTERM
  handler is installed once, lazily, in the main thread, and only where SIGTERM still has
  its default action: a handler the command or the embedding program installed itself is
  never replaced (that program then exits its own way, and the atexit hook closes them).

:func:`interrupt_on_term` makes SIGTERM behave as Ctrl-C for a command: it raises
``KeyboardInterrupt``, so the command detaches, prints its summary and exits 0.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import json
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Record", "record", "confirm", "forget", "records", "stale", "register_cleaner",
           "cleanup_stale", "track", "untrack", "close_tracked", "run_dir",
           "interrupt_on_term", "is_default_term_handler"]

_counter = itertools.count()
_lock = threading.RLock()


def run_dir() -> str:
    return os.environ.get("BPFKIT_RUN_DIR", "/run/bpfkit")


def _start_time(pid: int) -> int | None:
    """Process start time in clock ticks (field 22 of /proc/PID/stat); None if gone/zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2:].split()
    if not rest or rest[0] in (b"Z", b"X"):
        return None
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


@dataclass
class Record:
    """One persisted attachment: ``token`` names it for :func:`forget`."""

    token: str
    kind: str
    pid: int
    start_time: int | None
    data: dict[str, Any] = field(default_factory=dict)
    module: str | None = None
    created: float = 0.0
    state: str = "confirmed"

    @property
    def confirmed(self) -> bool:
        """False for an intent: the process may have died before, during or after the
        attachment, so the cleaner must look for it rather than assume it."""
        return self.state == "confirmed"

    @property
    def alive(self) -> bool:
        st = _start_time(self.pid)
        return st is not None and (self.start_time is None or st == self.start_time)


def process_start_time() -> int | None:
    """This process's start time in clock ticks: with the pid, names it uniquely."""
    return _start_time(os.getpid())


def _write(path: str, body: dict[str, Any]) -> None:
    tmp = f"{path}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        json.dump(body, f)
    os.replace(tmp, path)  # atomic: readers see the old or the new record, never half


def record(kind: str, data: dict[str, Any], *, module: str | None = None,
           state: str = "confirmed") -> str:
    """Persist an attachment of ``kind`` owned by this process; returns its token.

    ``state="intent"`` records it *before* attaching; :func:`confirm` then adds what the
    kernel chose.  ``module`` is imported by :func:`cleanup_stale` (in another process) so
    that it can register the cleaner of ``kind``.
    """
    d = run_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    pid = os.getpid()
    name = f"{pid}-{kind}-{next(_counter)}-{time.monotonic_ns()}.json"
    path = os.path.join(d, name)
    body = {"kind": kind, "pid": pid, "start_time": _start_time(pid), "data": data,
            "module": module, "created": time.time(), "state": state}
    _write(path, body)
    return path


def confirm(token: str, data: dict[str, Any] | None = None) -> None:
    """The attachment an intent announced exists: mark it confirmed, merging ``data``."""
    with open(token) as f:
        body = json.load(f)
    body["data"] = {**body["data"], **(data or {})}
    body["state"] = "confirmed"
    _write(token, body)


def forget(token: str) -> None:
    """Drop a record (the attachment was undone)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(token)


def records() -> list[Record]:
    """Every record on this machine (all processes)."""
    d = run_dir()
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        if not n.endswith(".json"):
            continue
        path = os.path.join(d, n)
        try:
            with open(path) as f:
                body = json.load(f)
            out.append(Record(token=path, kind=str(body["kind"]), pid=int(body["pid"]),
                              start_time=body.get("start_time"), data=dict(body["data"]),
                              module=body.get("module"), created=float(body.get("created", 0)),
                              state=str(body.get("state", "confirmed"))))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or foreign file: not ours to judge
    return out


def stale() -> list[Record]:
    """Records whose owning process is gone."""
    return [r for r in records() if not r.alive]


Cleaner = Callable[[Record], Any]
_cleaners: dict[str, Cleaner] = {}
_order: dict[str, int] = {}


def register_cleaner(kind: str, fn: Cleaner, *, order: int = 0) -> None:
    """``fn(record)`` undoes one stale attachment of ``kind``; raising keeps the record.

    Kinds with a lower ``order`` are cleaned first (e.g. filters before their qdisc).  A
    cleaner may :func:`forget` other records it made moot; those are then skipped.
    """
    _cleaners[kind] = fn
    _order[kind] = order


def cleanup_stale(kinds: set[str] | None = None) -> list[Record]:
    """Undo the attachments of dead bpfkit processes; return the records cleaned."""
    done = []
    todo = [r for r in stale() if kinds is None or r.kind in kinds]
    for r in todo:
        if r.kind not in _cleaners and r.module:
            with contextlib.suppress(ImportError):
                importlib.import_module(r.module)
    todo.sort(key=lambda r: _order.get(r.kind, 0))
    for r in todo:
        fn = _cleaners.get(r.kind)
        if fn is None or not os.path.exists(r.token):
            continue
        try:
            fn(r)
        except Exception:  # noqa: BLE001 - leave the record for a later attempt
            continue
        forget(r.token)
        done.append(r)
    return done


# ---------------------------------------------------------------- live objects

_live: dict[int, tuple[int, weakref.ref[Any]]] = {}
_atexit_done = False
_signal_done = False
_prev_term: Any = None


def track(obj: Any) -> None:
    """Close ``obj`` (anything with ``close()``) at exit or SIGTERM unless closed before."""
    with _lock:
        _live[id(obj)] = (os.getpid(), weakref.ref(obj))
    _install()


def untrack(obj: Any) -> None:
    with _lock:
        _live.pop(id(obj), None)


def close_tracked() -> None:
    """Close every tracked object this process (not a forked parent) made."""
    me = os.getpid()
    with _lock:
        items = list(_live.items())
        _live.clear()
    for _key, (pid, ref) in reversed(items):
        obj = ref()
        if obj is None or pid != me:
            continue
        with contextlib.suppress(Exception):
            obj.close()


def _on_term(signum: int, frame: FrameType | None) -> None:
    close_tracked()
    prev = _prev_term
    if callable(prev):
        prev(signum, frame)
        return
    # Default action: die of the signal as we would have, now that cleanup ran.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install() -> None:
    global _atexit_done, _signal_done, _prev_term
    with _lock:
        if not _atexit_done:
            atexit.register(close_tracked)
            _atexit_done = True
        if _signal_done or threading.current_thread() is not threading.main_thread():
            return
        _signal_done = True
        try:
            prev = signal.getsignal(signal.SIGTERM)
            if prev != signal.SIG_DFL:
                # The program (or the command) handles or ignores SIGTERM itself: keep its
                # handler; it exits its own way and the atexit hook closes what we track.
                return
            _prev_term = prev
            signal.signal(signal.SIGTERM, _on_term)
        except (ValueError, OSError):
            pass


def is_default_term_handler(h: Any) -> bool:
    """True when ``h`` is SIGTERM's default action or our own exit-cleanup handler, i.e. a
    library may install its handler there without overriding the program's."""
    return h == signal.SIG_DFL or h is _on_term


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_on_term() -> Any:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` exactly as Ctrl-C does, so a
    command takes one path for both: detach, print its summary, exit 0 (what bpftrace and
    BCC do for ``timeout 3 tool``).  Restores the previous handler afterwards; a no-op off
    the main thread or where SIGTERM is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        prev = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        prev = signal.SIG_IGN
    if prev == signal.SIG_IGN or prev is None:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGTERM, prev)
