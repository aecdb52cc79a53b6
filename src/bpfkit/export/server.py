"""Serve ``/metrics`` over HTTP with the standard library, or through prometheus_client.

Why both: the stdlib path always works; when ``prometheus_client`` is installed (extra
``bpfkit[prometheus]``) its exposition code renders the same families, so the output
follows whatever the client library does (e.g. content negotiation it adds later).
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
        reg.register(_Once())  # type: ignore[arg-type]
        return exposition.generate_latest(reg), exposition.CONTENT_TYPE_LATEST

    return rend


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:9435``, ``:9435`` (all addresses), ``[::1]:9435`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise BpfkitError(f"--listen {text!r}: want HOST:PORT (e.g. 127.0.0.1:9435)")
    host = host.strip("[]") if host.startswith("[") else host
    return host or "0.0.0.0", int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MetricsServer:
    """An HTTP server with ``/metrics`` (the families of ``collect()``) and ``/healthz``."""

    def __init__(self, collect: Callable[[], list[MetricFamily]], listen: str = "127.0.0.1:9435",
                 *, renderer: Renderer | None = None) -> None:
        host, port = parse_listen(listen)
        self.collect = collect
        self.renderer = renderer or builtin_renderer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "bpfkit-export"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    try:
                        body, ctype = outer.renderer(outer.collect())
                        code = 200
                    except Exception as e:  # a scrape must answer, whatever went wrong
                        body, ctype, code = f"collect failed: {e}\n".encode(), "text/plain", 500
                elif path == "/healthz":
                    body, ctype, code = b"ok\n", "text/plain", 200
                elif path == "/":
                    body = (b"<html><head><title>bpfkit export</title></head><body>"
                            b"<h1>bpfkit export</h1><a href='/metrics'>metrics</a></body></html>")
                    ctype, code = "text/html", 200
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _Server.address_family = family
        try:
            self.httpd = _Server((host, port), Handler)
        except OSError as e:
            raise BpfkitError(f"cannot listen on {listen}: {e.strerror or e}") from e
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        a = self.httpd.server_address
        return str(a[0]), int(a[1])

    @property
    def url(self) -> str:
        h, p = self.address
        return f"http://{'[' + h + ']' if ':' in h else h}:{p}/metrics"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> MetricsServer:
        """Serve from a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="bpfkit-export-http",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
