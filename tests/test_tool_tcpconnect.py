"""tcpconnect shows failed connects (refused: the SYN_SENT->CLOSE transition) with the
error, next to the successful ones; bpftrace watching inet_sock_set_state at the same time
is the oracle."""

from __future__ import annotations

import os
import socket

import pytest
from tool_oracles import Bpftrace, Tool

pytestmark = pytest.mark.requires_root

BT_FAILED = ('tracepoint:sock:inet_sock_set_state /args->oldstate == 2 && args->newstate == 7'
             ' && args->protocol == 6/ { printf("%d %d\\n", pid, args->dport); }')


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()          # nobody listens there now: a connect gets RST -> ECONNREFUSED
    return port


@pytest.mark.parametrize("hook", ["auto", "tp_btf", "tracepoint"])
def test_refused_connect_is_reported_with_its_error(hook: str) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    ok_port, bad_port = srv.getsockname()[1], _closed_port()
    refused = 0
    try:
        with Bpftrace(BT_FAILED) as bt, Tool("tcpconnect", "-p", str(os.getpid()), "--hook",
                                             hook, "-d", "3") as t:
            with socket.create_connection(("127.0.0.1", ok_port)):
                srv.accept()[0].close()
            for _ in range(2):
                c = socket.socket()
                try:
                    c.connect(("127.0.0.1", bad_port))
                except ConnectionRefusedError:
                    refused += 1
                finally:
                    c.close()
    finally:
        srv.close()
    assert refused == 2
    recs = t.records()
    ok = [r for r in recs if r["dport"] == ok_port]
    bad = [r for r in recs if r["dport"] == bad_port]
    assert len(ok) == 1 and not ok[0]["failed"] and ok[0]["error"] is None, recs
    assert len(bad) == 2, recs
    assert all(r["failed"] and r["error"] == "ECONNREFUSED" and r["ret"] == -111
               and r["pid"] == os.getpid() and r["daddr"] == "127.0.0.1" for r in bad)
    # the oracle: the same failed transitions, to the same port
    seen = [ln.split() for p in bt.printed for ln in p.splitlines() if ln.strip()]
    assert [int(port) for _, port in seen if int(port) == bad_port] == [bad_port] * 2, seen
    if hook != "auto":
        assert all(r["hook"] == hook for r in recs)


def test_refused_connect_text_column() -> None:
    bad_port = _closed_port()
    with Tool("tcpconnect", "-p", str(os.getpid()), "-d", "2.5", json_mode=False) as t:
        c = socket.socket()
        with pytest.raises(ConnectionRefusedError):
            c.connect(("127.0.0.1", bad_port))
        c.close()
    lines = [ln for ln in t.stdout.splitlines() if f":{bad_port} " in ln]
    assert t.stdout.splitlines()[0].split()[-1] == "ERROR"
    assert len(lines) == 1 and lines[0].split()[-1] == "ECONNREFUSED", t.stdout
