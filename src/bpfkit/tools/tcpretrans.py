"""tcpretrans: TCP retransmissions with the connection and its TCP state (or, ``-c``,
counts per connection every interval), from tcp:tcp_retransmit_skb.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Manager, Probe
from .base import Column, Tool
from .tcpconnect import _addr

STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
          6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
          11: "CLOSING", 12: "NEW_SYN_RECV"}


class TcpRetrans(Tool):
    name = "tcpretrans"
    help = "trace TCP retransmissions: connection and state"
    bcc = "tcpretrans"
    events_map = "events"
    record = "event"
    options = ("duration",)
    differs = ("-l (tail loss probes) is not implemented; -c prints counts every "
               "--interval seconds (BCC: at Ctrl-C); PID is the task the retransmit ran in "
               "(often 0: a timer).")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--count", dest="count_mode", action="store_true",
                       help="count retransmits per connection")
        p.add_argument("--interval", type=float, default=0.0,
                       help="with -c: print the counts every this many seconds")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-4", "--ipv4", action="store_true", help="only IPv4")
        g.add_argument("-6", "--ipv6", action="store_true", help="only IPv6")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_family": 2 if args.ipv4 else 10 if args.ipv6 else 0,
                "targ_count": bool(args.count_mode)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe("tp_retransmit")]

    def header(self, args: argparse.Namespace) -> str | None:
        if args.count_mode:
            return None
        return (f"{'TIME':<8} {'PID':<7} {'IP':<2} {'LADDR:LPORT':<24} T> "
                f"{'RADDR:RPORT':<24} STATE")

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        t = time.strftime("%H:%M:%S", time.localtime(self.record_time(rec)))
        ip = 4 if rec.family == 2 else 6
        la = f"{_addr(rec.saddr, rec.family)}:{rec.lport}"
        ra = f"{_addr(rec.daddr, rec.family)}:{rec.rport}"
        return f"{t:<8} {rec.pid:<7} {ip:<2} {la:<24} R> {ra:<24} {STATES.get(rec.state, '?')}"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "ip": 4 if rec.family == 2 else 6,
                "laddr": _addr(rec.saddr, rec.family), "lport": rec.lport,
                "raddr": _addr(rec.daddr, rec.family), "rport": rec.rport, "type": "R",
                "state": STATES.get(rec.state, str(rec.state))}

    def loop(self, m: Manager, args: argparse.Namespace, stop: dict[str, bool]) -> int:
        if not args.count_mode:
            return super().loop(m, args, stop)
        end = time.monotonic() + args.duration if args.duration else None
        last = time.monotonic()
        try:
            while not stop["now"] and (end is None or time.monotonic() < end):
                time.sleep(0.1)
                if args.interval and time.monotonic() - last >= args.interval:
                    self.print_counts(m, args)
                    last = time.monotonic()
        except KeyboardInterrupt:
            pass
        self.print_counts(m, args)
        return 0

    def print_counts(self, m: Manager, args: argparse.Namespace) -> None:
        cmap = m.map("counts")
        rows: list[dict[str, Any]] = []
        for k, v in list(cmap.items()):
            n = int.from_bytes(v, "little") if isinstance(v, bytes) else int(v)
            rows.append({"laddr": _addr(k.saddr, k.family), "lport": int(k.lport),
                         "raddr": _addr(k.daddr, k.family), "rport": int(k.rport),
                         "local": f"{_addr(k.saddr, k.family)}:{k.lport}",
                         "remote": f"{_addr(k.daddr, k.family)}:{k.rport}", "retransmits": n})
        cmap.clear()
        rows.sort(key=lambda r: -r["retransmits"])
        self.print_table(rows, [Column("LADDR:LPORT", "<24", "local"),
                                Column("RADDR:RPORT", "<24", "remote"),
                                Column("RETRANSMITS", ">11", "retransmits")], args)


TOOL = TcpRetrans()
