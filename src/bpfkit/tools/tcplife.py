"""tcplife: TCP sessions as they close: process, addresses, ports, KB sent and received,
and the session's lifetime in ms.

sock:inet_sock_set_state marks the birth (first SYN_SENT/SYN_RECV/ESTABLISHED), who (the
process at SYN_SENT or LAST_ACK, else the one closing) and the close; the byte counts are
the socket's own (bytes_acked, bytes_received).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from .base import Tool, plain
from .tcpconnect import _addr


class TcpLife(Tool):
    name = "tcplife"
    help = "trace TCP sessions as they close: bytes, duration"
    bcc = "tcplife"
    events_map = "events"
    record = "event"
    options = ("pid", "time", "timestamp", "duration")
    flags = {"timestamp": ("-t", "--timestamp")}
    filters = {"pid": "targ_pid"}
    differs = ("-L and -D take one port each; -s (CSV) is not implemented; -w only widens "
               "the address columns.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-L", "--localport", type=int, help="only this local port")
        p.add_argument("-D", "--remoteport", type=int, help="only this remote port")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-4", "--ipv4", action="store_true", help="only IPv4")
        g.add_argument("-6", "--ipv6", action="store_true", help="only IPv6")
        p.add_argument("-w", "--wide", action="store_true", help="wide address columns")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        fam = 2 if args.ipv4 else 10 if args.ipv6 else 0
        return {"targ_family": fam, "targ_lport": args.localport or 0,
                "targ_rport": args.remoteport or 0}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe("tp_set_state")]

    def _w(self, args: argparse.Namespace) -> int:
        return 39 if args.wide else 15

    def header(self, args: argparse.Namespace) -> str:
        w = self._w(args)
        return (f"{'PID':<7} {'COMM':<10} {'LADDR':<{w}} {'LPORT':>5} {'RADDR':<{w}} "
                f"{'RPORT':>5} {'TX_KB':>5} {'RX_KB':>5} MS")

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        w = self._w(args)
        return (f"{rec.pid:<7} {plain(rec.comm):<10.10} {_addr(rec.saddr, rec.family):<{w}} "
                f"{rec.lport:>5} {_addr(rec.daddr, rec.family):<{w}} {rec.rport:>5} "
                f"{rec.tx_b // 1024:>5} {rec.rx_b // 1024:>5} {rec.span_ns / 1e6:.2f}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "comm": plain(rec.comm), "ip": 4 if rec.family == 2 else 6,
                "laddr": _addr(rec.saddr, rec.family), "lport": rec.lport,
                "raddr": _addr(rec.daddr, rec.family), "rport": rec.rport,
                "tx_bytes": rec.tx_b, "rx_bytes": rec.rx_b, "ms": rec.span_ns / 1e6}


TOOL = TcpLife()
