"""tcpstates: TCP socket operations per connection (connect, listen, established, state
changes, RTO, retransmits, RTT) for the sockets of a cgroup v2, from a sockops program.

sockops runs in the TCP stack itself for the sockets of tasks in its cgroup, so it needs
no kprobe or tracepoint: it works where kernel functions cannot be hooked.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from ..manager import Manager, Probe
from .base import Tool, port_number

OPS = {3: "connect", 4: "established", 5: "established", 8: "rto", 9: "retrans",
       10: "state", 11: "listen", 12: "rtt"}
OP_SIDE = {4: "active", 5: "passive"}
STATES = {0: "-", 1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
          5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK",
          10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}


def _addr(family: int, raw: Any) -> str:
    b = raw.encode("latin-1") if isinstance(raw, str) else bytes(raw)
    b = b.ljust(16, b"\0")
    if family == 2:
        return str(ipaddress.IPv4Address(b[:4]))
    return str(ipaddress.IPv6Address(b[:16]))


class TcpStates(Tool):
    name = "tcpstates"
    help = "TCP socket operations per connection in a cgroup (sockops)"
    events_map = "events"
    record = "event"
    options = ("pid", "cgroup", "name", "time", "timestamp", "duration")
    filters = {"cgroup": "tool"}    # the sockops program is attached to that cgroup
    differs = ("BCC's tcpstates traces sock:inet_sock_set_state for every socket; this one "
               "is a sockops program on a cgroup (default the cgroup2 root), so -p/-n are "
               "refused; -P PORT matches either end.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--rtt", action="store_true",
                       help="also report every RTT estimate (one per ACK)")
        p.add_argument("-P", "--port", type=port_number, default=0,
                       help="only connections with this local or remote port")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if args.rtt:
            c["want_rtt"] = 1
        if args.port:
            c["targ_port"] = args.port
        return c

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        # The cgroup v2 root unless --cgroup names one: found from /proc/mounts.
        return [Probe("tcp_sockops", cgroup=args.cgroup or "auto")]

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        self._start_ns: int | None = None

    def _fields(self, rec: Any) -> dict[str, Any]:
        op = OPS.get(rec.op, f"op{rec.op}")
        if rec.op in OP_SIDE:
            op = f"{op}({OP_SIDE[rec.op]})"
        return {"cookie": rec.cookie, "ts_ns": rec.ts_ns, "event": op,
                "family": "ipv4" if rec.family == 2 else "ipv6",
                "saddr": _addr(rec.family, rec.saddr), "sport": rec.lport,
                "daddr": _addr(rec.family, rec.daddr), "dport": rec.rport,
                "old_state": STATES.get(rec.old_state, str(rec.old_state)),
                "new_state": STATES.get(rec.new_state, str(rec.new_state)),
                "srtt_us": rec.srtt_us, "bytes_received": rec.bytes_received,
                "bytes_acked": rec.bytes_acked, "total_retrans": rec.total_retrans}

    def header(self, args: argparse.Namespace) -> str:
        return (f"{'COOKIE':>8} {'LADDR:LPORT':<24} {'RADDR:RPORT':<24} {'EVENT':<21} "
                f"{'STATE':<26} {'SRTT(us)':>8} {'RX':>8} {'ACKED':>8}")

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        f = self._fields(rec)
        state = f["new_state"] if f["old_state"] == f["new_state"] else \
            f"{f['old_state']}->{f['new_state']}"
        return (f"{f['cookie']:>8} {f['saddr'] + ':' + str(f['sport']):<24} "
                f"{f['daddr'] + ':' + str(f['dport']):<24} {f['event']:<21} {state:<26} "
                f"{f['srtt_us']:>8} {f['bytes_received']:>8} {f['bytes_acked']:>8}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return self._fields(rec)

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        return True


TOOL = TcpStates()
