"""The exporter's HTTP server under hostile clients: idle connections, early disconnects,
pipelining, floods.  The server runs in this process; clients are real sockets."""

from __future__ import annotations

import http.client
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bpfkit.export import server as srv
from bpfkit.export.server import MetricsServer
from bpfkit.export.textformat import MetricFamily, Sample

BODY_MARK = "bpfkit_test_scrapes_total"


def families() -> list[MetricFamily]:
    fam = MetricFamily(BODY_MARK, "counter", "scrapes served")
    fam.samples.append(Sample(BODY_MARK, {"kind": "test"}, 1.0))
    return [fam]


@pytest.fixture
def nofile() -> Iterator[None]:
    """1,000 idle clients + their server ends need more than the usual 1,024 fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def scrape(addr: tuple[str, int], conn: http.client.HTTPConnection | None = None) -> str:
    c = conn or http.client.HTTPConnection(*addr, timeout=30)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    assert r.status == 200, (r.status, body)
    if conn is None:
        c.close()
    return body


def test_5000_scrapes_succeed_while_1000_idle_connections_are_open(nofile: None) -> None:
    with MetricsServer(families, "127.0.0.1:0", request_timeout=300).start() as s:
        addr = s.address
        idle = []
        for i in range(1000):
            sk = socket.create_connection(addr, timeout=10)
            if i % 2:
                sk.sendall(b"GET /metr")  # half a request line, never finished
            idle.append(sk)
        time.sleep(0.5)
        # idle connections cost a file descriptor each, not a thread each
        assert threading.active_count() < 40

        def client(n: int) -> int:
            ok = 0
            keep = http.client.HTTPConnection(*addr, timeout=30) if n % 2 else None
            for _ in range(625):
                ok += BODY_MARK in scrape(addr, keep)
            if keep is not None:
                keep.close()
            return ok

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(client, range(8))) == 5000
        # the idle ones were neither dropped nor starved: one finishes its request now
        idle[1].sendall(b"ics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        idle[1].settimeout(10)
        reply = b""
        while chunk := idle[1].recv(65536):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and BODY_MARK.encode() in reply
        assert s.stats["timeouts"] == 0
        for sk in idle:
            sk.close()


def test_idle_connection_is_closed_after_the_request_timeout() -> None:
    with MetricsServer(families, "127.0.0.1:0", request_timeout=0.5).start() as s:
        sk = socket.create_connection(s.address, timeout=10)
        sk.sendall(b"GET /metrics HTTP/1.1\r\n")  # never the blank line
        t0 = time.monotonic()
        assert sk.recv(100) == b""  # closed by the server, not by our 10 s timeout
        assert time.monotonic() - t0 < 5
        assert s.stats["timeouts"] == 1
        sk.close()
        assert BODY_MARK in scrape(s.address)


def test_early_disconnects_are_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    """A client that resets the connection before its answer: no BrokenPipe traceback."""
    def slow() -> list[MetricFamily]:
        time.sleep(0.05)
        return families() * 2000  # a body larger than the socket buffers

    with MetricsServer(slow, "127.0.0.1:0").start() as s:
        for _ in range(20):
            sk = socket.create_connection(s.address)
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sk.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sk.close()  # RST
        time.sleep(1.0)
        assert BODY_MARK in scrape(s.address)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "BrokenPipe" not in err and "Reset" not in err, err


def test_pipelined_requests_head_and_bad_requests() -> None:
    with MetricsServer(families, "127.0.0.1:0").start() as s:
        sk = socket.create_connection(s.address, timeout=10)
        sk.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sk.recv(65536):
            data += chunk
        sk.close()
        assert data.count(b"HTTP/1.1 ") == 3
        first, second, third = data.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200") and first.endswith(b"ok\n")
        assert second.startswith(b"200") and BODY_MARK.encode() not in second  # HEAD
        assert third.startswith(b"404")
        for raw, code in ((b"POST /metrics HTTP/1.1\r\n\r\n", b"405"),
                          (b"garbage\r\n\r\n", b"400")):
            sk = socket.create_connection(s.address, timeout=10)
            sk.sendall(raw)
            assert sk.recv(100).startswith(b"HTTP/1.1 " + code)
            sk.close()
        # a request head larger than the limit is dropped, not buffered forever
        sk = socket.create_connection(s.address, timeout=10)
        try:
            sk.sendall(b"GET /" + b"a" * (srv.MAX_REQUEST * 2))
        except OSError:
            pass
        assert sk.recv(100) == b""
        sk.close()


def test_worker_pool_is_bounded_and_overflow_gets_503(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    def blocked() -> list[MetricFamily]:
        gate.wait(30)
        return families()

    monkeypatch.setattr(srv, "MAX_PENDING", 2)
    with MetricsServer(blocked, "127.0.0.1:0", workers=1).start() as s:
        threads_before = threading.active_count()
        socks = []
        for _ in range(6):
            sk = socket.create_connection(s.address, timeout=30)
            sk.sendall(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
            socks.append(sk)
        time.sleep(0.5)
        assert threading.active_count() <= threads_before + 1
        for sk in socks[2:]:  # refused at once, while the worker is still busy
            assert sk.recv(12) == b"HTTP/1.1 503"
        gate.set()
        codes = []
        for sk in socks[:2]:
            codes.append(sk.recv(12)[9:12])
        for sk in socks:
            sk.close()
        assert codes == [b"200", b"200"], codes
