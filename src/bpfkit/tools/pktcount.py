"""pktcount: packets and bytes per interface, direction and protocol, every interval.

tcx links on ingress and egress (kernel 6.6+), legacy clsact/cls_bpf filters where tcx is
missing (or with ``--legacy``), or XDP with ``--xdp`` (ingress only, before the stack).
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from datetime import datetime

from ..errors import BpfkitError
from ..manager import Manager, Probe
from .base import Tool
from .sockfilter import proto_name


def _ifname(idx: int) -> str:
    try:
        return socket.if_indextoname(idx)
    except OSError:
        return f"if{idx}"


class PktCount(Tool):
    name = "pktcount"
    help = "packets and bytes per direction and protocol on an interface"
    interval_tool = True
    options = ("pid", "cgroup", "name", "time", "duration", "interval")
    differs = "BCC has no pktcount (packets have no process at tc/XDP: -p/-c/-n are refused)."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--interface", action="append", default=[],
                       help="interface to watch (repeatable; default: all interfaces)")
        p.add_argument("--skip-loopback", action="store_true",
                       help="without -i: all interfaces except loopback")
        p.add_argument("--xdp", action="store_true",
                       help="count with XDP instead of tc (ingress only)")
        p.add_argument("--legacy", action="store_true",
                       help="use legacy clsact + cls_bpf filters instead of tcx links")
        p.add_argument("--cumulative", action="store_true",
                       help="totals since start instead of per-interval counts")

    def _ifaces(self, args: argparse.Namespace) -> list[str]:
        if args.interface:
            return list(args.interface)
        from ..attach.net import interfaces
        names = interfaces(skip_loopback=args.skip_loopback)
        if not names:
            raise BpfkitError("pktcount: no interface to watch")
        return names

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        optional = not args.interface  # "all interfaces": attach where possible
        out = []
        for ifc in self._ifaces(args):
            if args.xdp:
                out.append(Probe("xdp_count", uid=ifc, ifname=ifc, optional=optional))
                continue
            for d in ("ingress", "egress"):
                best = [f"tc_{d}"] if args.legacy else [f"tcx_{d}", f"tc_{d}"]
                out.append(Probe(best[0], uid=f"{ifc}/{d}", fallbacks=best[1:], ifname=ifc,
                                 direction=d, optional=optional))
        return out

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        if not any(st.attached for st in m.report()):
            raise BpfkitError("pktcount: could not attach to any interface: " + "; ".join(
                f"{st.uid}: {st.reason}" for st in m.report()))

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        pk = m.map("pkts")
        rows = []
        for k, v in list(pk.items()):
            if not args.cumulative:
                pk.delete(k)
            rows.append({"interface": _ifname(k.ifindex), "ifindex": k.ifindex,
                         "direction": "egress" if k.direction else "ingress",
                         "proto": proto_name(k.ethertype, k.ipproto), "ethertype": k.ethertype,
                         "ipproto": k.ipproto, "packets": v.packets, "bytes": v.bytes})
        rows.sort(key=lambda r: (r["interface"], r["direction"], -r["packets"], r["proto"]))
        if args.json:
            print(json.dumps({"time": time.time(), "counts": rows}), flush=True)
            return
        stamp = datetime.now().strftime("%H:%M:%S") + " " if args.time else ""
        print(f"{stamp}{'INTERFACE':<16} {'DIR':<7} {'PROTO':<14} {'PACKETS':>10} {'BYTES':>12}")
        for r in rows:
            print(f"{stamp}{r['interface']:<16} {r['direction']:<7} {r['proto']:<14} "
                  f"{r['packets']:>10} {r['bytes']:>12}")
        print(flush=True)


TOOL = PktCount()
