"""tcpconnect: trace new TCP connections (src:port -> dst:port) and the hook that saw them.

fentry/fexit on ``tcp_connect`` where the kernel allows it; else kprobes on ``tcp_connect``
and ``inet_csk_complete_hashdance`` that share one handler through a tail call; else
``sock:inet_sock_set_state`` as tp_btf or as a tracepoint, which reports a connection when
it reaches ESTABLISHED (with the connecting process remembered at SYN_SENT).  A connect
that fails (refused, timed out, aborted) is the SYN_SENT->CLOSE transition: reported with
the socket's error (ECONNREFUSED...) whatever the family (the fentry/kprobe families add the
tracepoint for it).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
from typing import Any

from ..manager import Probe
from .base import SNOOP_OPTIONS, Tool, companions, plain, port_number
from .opensnoop import HOOK_NAMES

AF_INET = 2


def _addr(raw: Any, family: int) -> str:
    b = bytes(raw)
    return str(ipaddress.IPv4Address(b[:4]) if family == AF_INET else ipaddress.IPv6Address(b[:16]))


class TcpConnect(Tool):
    name = "tcpconnect"
    help = "trace new TCP connections: src:port -> dst:port"
    events_map = "events"
    record = "event"
    bcc = "tcpconnect"
    options = tuple(o for o in SNOOP_OPTIONS if o != "tid")
    flags = {"timestamp": ("-t", "--timestamp")}
    filters = {"pid": "targ_pid", "uid": "targ_uid", "cgroup": "targ_cgid", "name": "targ_comm"}
    hook_families = ("fentry", "kprobe", "tp_btf", "tracepoint")
    differs = ("-c PATH is a cgroup v2 path (BCC: -c counts connects; --cgroupmap); -a also "
               "shows accepts; -P PORT matches either end; -L, -4/-6, -d are not implemented.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-a", "--accepts", action="store_true",
                       help="also accepted (passive) connections")
        p.add_argument("-P", "--port", type=port_number, action="append",
                       help="only connections with this local or remote port (repeatable)")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_accepts": True} if args.accepts else {}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        lp = self.hook_probe(args, ["fexit_connect", "kprobe_connect", "tp_btf_state",
                                    "tp_state"])
        lead, accept = lp.program, args.accepts
        return [lp,
                *companions(lead, ["fentry_connect"] + (["fentry_accept"] if accept else []),
                            when="fentry"),
                *companions(lead, ["kprobe_accept"] if accept else [], when="kprobe"),
                *companions(lead, ["tp_connect_fail"], when="fentry"),
                *companions(lead, ["tp_connect_fail"], when="kprobe")]

    def tail_calls(self, args: argparse.Namespace) -> dict[str, dict[int, str]]:
        # The kprobes' shared handler; filled whatever hook wins (it costs one slot).
        return {"handlers": {0: "kprobe_handler"}}

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        if args.port and rec.sport not in args.port and rec.dport not in args.port:
            return False
        return True

    def header(self, args: argparse.Namespace) -> str:
        return (f"{'PID':>7} {'COMM':<16} {'IP':>2} {'SADDR:SPORT':<22}    {'DADDR:DPORT':<22} "
                f"{'DIR':<7} {'HOOK':<10} {'LAT(ms)':>8} ERROR")

    def _fields(self, rec: Any) -> dict[str, Any]:
        fam = int(rec.family)
        return {"pid": rec.pid, "uid": rec.uid, "comm": plain(rec.comm),
                "family": "ipv4" if fam == AF_INET else "ipv6",
                "saddr": _addr(rec.saddr, fam), "sport": rec.sport,
                "daddr": _addr(rec.daddr, fam), "dport": rec.dport,
                "direction": "connect" if rec.dir == 0 else "accept",
                "hook": HOOK_NAMES.get(rec.hook, str(rec.hook)), "ret": rec.ret,
                "failed": bool(rec.failed),
                "error": (errno.errorcode.get(-rec.ret, str(-rec.ret)) if rec.ret < 0
                          else "closed" if rec.failed else None),
                "latency_ns": rec.lat_ns}

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        f = self._fields(rec)
        ip = "4" if f["family"] == "ipv4" else "6"
        src = f"{f['saddr']}:{f['sport']}" if ip == "4" else f"[{f['saddr']}]:{f['sport']}"
        dst = f"{f['daddr']}:{f['dport']}" if ip == "4" else f"[{f['daddr']}]:{f['dport']}"
        pid = str(f["pid"]) if f["direction"] == "connect" else "-"
        comm = f["comm"] if f["direction"] == "connect" else "-"
        lat = f"{f['latency_ns'] / 1e6:.3f}" if f["latency_ns"] else "-"
        return (f"{pid:>7} {comm:<16} {ip:>2} {src:<22} -> {dst:<22} {f['direction']:<7} "
                f"{f['hook']:<10} {lat:>8} {f['error'] or '-'}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return self._fields(rec)


TOOL = TcpConnect()
