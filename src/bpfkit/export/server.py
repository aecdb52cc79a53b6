"""Serve ``/metrics`` over HTTP with the standard library, or through prometheus_client.

Why both: the stdlib path always works; when ``prometheus_client`` is installed (extra
``bpfkit[prometheus]``) its exposition code renders the same families, so the output
follows whatever the client library does (e.g. content negotiation it adds later).
"""

from __future__ import annotations

import grp
import os
import pwd
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import BpfkitError
from .textformat import CONTENT_TYPE, MetricFamily, render

__all__ = ["MetricsServer", "parse_listen", "drop_privileges", "client_renderer",
           "builtin_renderer"]

Renderer = Callable[[list[MetricFamily]], tuple[bytes, str]]


def builtin_renderer(families: list[MetricFamily]) -> tuple[bytes, str]:
    return render(families).encode("utf-8"), CONTENT_TYPE


def client_renderer() -> Renderer | None:
    """A renderer through prometheus_client, or None when it is not installed."""
    try:
        from prometheus_client import exposition
        from prometheus_client.core import CollectorRegistry, Metric
    except ImportError:
        return None

    def rend(families: list[MetricFamily]) -> tuple[bytes, str]:
        class _Once:
            def collect(self) -> Any:
                for fam in families:
                    m = Metric(fam.name, fam.help, fam.type)
                    for s in fam.samples:
                        m.add_sample(s.name, s.labels, s.value)
                    yield m

        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Once())
        return exposition.generate_latest(reg), exposition.CONTENT_TYPE_LATEST

    return rend


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:9435``, ``:9435`` (all addresses), ``[::1]:9435`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise BpfkitError(f"--listen {text!r}: want HOST:PORT (e.g. 127.0.0.1:9435)")
    host = host.strip("[]") if host.startswith("[") else host
    return host or "0.0.0.0", int(port)


# Limits that keep one scraper's misbehaviour from starving the others.
REQUEST_TIMEOUT = 10.0   # seconds to send a complete request head (Prometheus' own default)
WRITE_TIMEOUT = 10.0     # seconds a client may take to read a response
MAX_CONNECTIONS = 4096   # open connections; more are accepted and closed at once
MAX_REQUEST = 16384      # bytes of request line + headers
WORKERS = 4              # threads that render and send responses
MAX_PENDING = 256        # requests queued for the workers; more get 503
SWEEP = 0.25             # seconds between scans for connections past their deadline


class _Conn:
    __slots__ = ("sock", "buf", "deadline")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.buf = b""
        self.deadline = deadline


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class MetricsServer:
    """An HTTP server with ``/metrics`` (the families of ``collect()``) and ``/healthz``.

    Built to survive hostile or broken clients, which ``ThreadingHTTPServer`` (one thread
    per connection, no timeout) does not: one thread multiplexes every connection with
    :mod:`selectors` while it waits for a request, so an idle connection costs a file
    descriptor and not a thread; a connection that has not sent a complete request head in
    ``request_timeout`` seconds is closed; complete requests go to a fixed pool of
    ``workers`` threads (a bounded queue in front, 503 beyond it); a client that disconnects
    early is dropped silently.  HTTP/1.1 keep-alive is honoured.
    """

    def __init__(self, collect: Callable[[], list[MetricFamily]], listen: str = "127.0.0.1:9435",
                 *, renderer: Renderer | None = None, workers: int = WORKERS,
                 request_timeout: float = REQUEST_TIMEOUT, write_timeout: float = WRITE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        host, port = parse_listen(listen)
        self.collect = collect
        self.renderer = renderer or builtin_renderer
        self.request_timeout = request_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            ls = socket.socket(family, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((host, port))
            ls.listen(1024)
            ls.setblocking(False)
        except OSError as e:
            raise BpfkitError(f"cannot listen on {listen}: {e.strerror or e}") from e
        self._listener = ls
        self._workers = ThreadPoolExecutor(max_workers=max(1, workers),
                                           thread_name_prefix="bpfkit-export-worker")
        self._pending = 0
        self._lock = threading.Lock()
        self._returned: deque[_Conn] = deque()   # keep-alive connections back from workers
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = {"requests": 0, "timeouts": 0, "refused": 0, "disconnects": 0}

    @property
    def address(self) -> tuple[str, int]:
        a = self._listener.getsockname()
        return str(a[0]), int(a[1])

    @property
    def url(self) -> str:
        h, p = self.address
        return f"http://{'[' + h + ']' if ':' in h else h}:{p}/metrics"

    # ------------------------------------------------------------------ the event loop
    def serve_forever(self) -> None:
        """Serve until :meth:`close` (or :meth:`shutdown`) from another thread."""
        self._stopped.clear()
        sel = selectors.DefaultSelector()
        conns: dict[int, _Conn] = {}
        sel.register(self._listener, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            next_sweep = time.monotonic() + SWEEP
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=SWEEP):
                    if key.fileobj is self._listener:
                        self._accept(sel, conns)
                    elif key.fileobj is self._wake_r:
                        self._drain_wakeups(sel, conns)
                    else:
                        self._read(sel, conns, key.data)
                now = time.monotonic()
                if now >= next_sweep:  # a scan of every connection, a few times a second
                    next_sweep = now + SWEEP
                    for c in [c for c in conns.values() if c.deadline <= now]:
                        self.stats["timeouts"] += 1
                        self._drop(sel, conns, c)
        finally:
            for c in list(conns.values()):
                self._drop(sel, conns, c)
            sel.close()
            self._stopped.set()

    def _accept(self, sel: selectors.BaseSelector, conns: dict[int, _Conn]) -> None:
        for _ in range(64):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: try again on the next round
                self.stats["refused"] += 1
                return
            if len(conns) >= self.max_connections:
                self.stats["refused"] += 1
                _close(sock)
                continue
            sock.setblocking(False)
            c = _Conn(sock, time.monotonic() + self.request_timeout)
            conns[sock.fileno()] = c
            sel.register(sock, selectors.EVENT_READ, c)

    def _drop(self, sel: selectors.BaseSelector, conns: dict[int, _Conn], c: _Conn) -> None:
        conns.pop(c.sock.fileno(), None)
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        _close(c.sock)

    def _read(self, sel: selectors.BaseSelector, conns: dict[int, _Conn], c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.stats["disconnects"] += 1
            self._drop(sel, conns, c)
            return
        c.buf += data
        self._dispatch(sel, conns, c)

    def _dispatch(self, sel: selectors.BaseSelector, conns: dict[int, _Conn], c: _Conn) -> None:
        """Hand a connection whose buffer holds a complete request head to the workers."""
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(c.buf) > MAX_REQUEST:
                self._drop(sel, conns, c)
            return
        conns.pop(c.sock.fileno(), None)
        sel.unregister(c.sock)
        head, c.buf = c.buf[:end], c.buf[end + 4:]
        with self._lock:
            busy = self._pending >= MAX_PENDING
            if not busy:
                self._pending += 1
        if busy:  # answered here, without blocking: the reply fits in any socket buffer
            self.stats["refused"] += 1
            try:
                c.sock.send(_BUSY)
            except OSError:
                pass
            _close(c.sock)
            return
        try:
            self._workers.submit(self._respond, c, head)
        except RuntimeError:  # the pool is shut down: we are closing
            _close(c.sock)

    def _drain_wakeups(self, sel: selectors.BaseSelector, conns: dict[int, _Conn]) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass
        while True:
            try:
                c = self._returned.popleft()
            except IndexError:
                return
            c.deadline = time.monotonic() + self.request_timeout
            conns[c.sock.fileno()] = c
            sel.register(c.sock, selectors.EVENT_READ, c)
            if c.buf:  # a pipelined request already arrived
                self._dispatch(sel, conns, c)

    # ------------------------------------------------------------------ the workers
    def _answer(self, head: bytes) -> tuple[int, str, bytes, bool]:
        """(status, content type, body, keep-alive) for one request head."""
        lines = head.split(b"\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return 400, "text/plain", b"bad request\n", False
        method, target, version = parts
        headers = {}
        for ln in lines[1:]:
            k, sep, v = ln.partition(b":")
            if sep:
                headers[k.strip().lower()] = v.strip().lower()
        keep = (headers.get(b"connection") != b"close" if version == b"HTTP/1.1"
                else headers.get(b"connection") == b"keep-alive")
        if headers.get(b"content-length", b"0") not in (b"0", b"") or \
                b"transfer-encoding" in headers:
            keep = False  # we do not read request bodies: do not reuse the stream
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"method not allowed\n", False
        path = target.split(b"?", 1)[0]
        if path == b"/metrics":
            try:
                body, ctype = self.renderer(self.collect())
                code = 200
            except Exception as e:  # noqa: BLE001 - a scrape must answer, whatever went wrong
                body, ctype, code = f"collect failed: {e}\n".encode(), "text/plain", 500
        elif path == b"/healthz":
            body, ctype, code = b"ok\n", "text/plain", 200
        elif path == b"/":
            body = (b"<html><head><title>bpfkit export</title></head><body>"
                    b"<h1>bpfkit export</h1><a href='/metrics'>metrics</a></body></html>")
            ctype, code = "text/html", 200
        else:
            body, ctype, code = b"not found\n", "text/plain", 404
        return code, ctype, body, keep  # for HEAD, _send sends the length, not the body

    def _send(self, c: _Conn, code: int, ctype: str, body: bytes, keep: bool,
              head_only: bool = False) -> bool:
        reason = _REASONS.get(code, "")
        hdr = (f"HTTP/1.1 {code} {reason}\r\nServer: bpfkit-export\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
               f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        try:
            c.sock.settimeout(self.write_timeout)
            c.sock.sendall(hdr if head_only else hdr + body)
            c.sock.setblocking(False)
            return True
        except OSError:  # reset, broken pipe, or a reader too slow: drop it quietly
            self.stats["disconnects"] += 1
            return False

    def _respond(self, c: _Conn, head: bytes) -> None:
        try:
            code, ctype, body, keep = self._answer(head)
            self.stats["requests"] += 1
            ok = self._send(c, code, ctype, body, keep, head.startswith(b"HEAD "))
            if ok and keep and not self._stop.is_set():
                self._returned.append(c)
                try:
                    self._wake_w.send(b"\0")
                except OSError:  # the wakeup buffer is full: the loop is awake anyway
                    pass
            else:
                _close(c.sock)
        finally:
            with self._lock:
                self._pending -= 1

    # ------------------------------------------------------------------ life cycle
    def start(self) -> MetricsServer:
        """Serve from a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="bpfkit-export-http",
                                        daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread or a signal handler)."""
        self._stop.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self.shutdown()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._workers.shutdown(wait=True, cancel_futures=True)
        for s in (self._listener, self._wake_r, self._wake_w):
            _close(s)
        while self._returned:
            _close(self._returned.popleft().sock)
        self._closed = True

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 12\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy, retry\n")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}


def drop_privileges(user: str) -> tuple[int, int]:
    """Become ``user`` (name or uid) for good, keeping every open fd (maps, links).

    BPF objects stay usable through the fds the exporter holds: map reads and program
    info need no capability on an fd, only creating maps/programs does.  Returns (uid, gid).
    """
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise BpfkitError(f"--user {user!r}: no such user") from None
    uid, gid = pw.pw_uid, pw.pw_gid
    groups = [g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem and g.gr_gid != gid]
    try:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    except PermissionError as e:
        raise BpfkitError(f"cannot drop privileges to {pw.pw_name}: {e.strerror} (run as root "
                          "to use --user)") from e
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - a kernel that lets us back is a broken sandbox
            raise BpfkitError("privileges were not dropped: setuid(0) still succeeds")
    print(f"bpfkit export: now running as {pw.pw_name} (uid {uid}, gid {gid})", file=sys.stderr)
    return uid, gid
