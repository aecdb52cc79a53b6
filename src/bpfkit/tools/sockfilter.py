"""sockfilter: packets seen by a socket filter, counted per protocol and direction.

The classic first eBPF program: a SOCKET_FILTER on a raw AF_PACKET socket.  It returns 0,
so the kernel never queues a copy of the packet and counting costs no wake-ups.  With
``--demo`` it runs on a socket pair fed with made-up frames (no network needed).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from datetime import datetime
from typing import Any

from ..manager import Manager, Probe
from .base import Tool

ETHERTYPES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP", 0x8100: "VLAN", 0x88CC: "LLDP",
              0x8847: "MPLS", 0x8035: "RARP", 0x888E: "EAPOL"}
IPPROTOS = {0: "HOPOPT", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE",
            50: "ESP", 51: "AH", 58: "ICMPv6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP",
            136: "UDPLite"}


def proto_name(ethertype: int, ipproto: int) -> str:
    """``IPv4/UDP``, ``ARP``, ``0x88b5``: a protocol label from ethertype and IP protocol."""
    fam = ETHERTYPES.get(ethertype, f"0x{ethertype:04x}")
    if ethertype in (0x0800, 0x86DD):
        return f"{fam}/{IPPROTOS.get(ipproto, str(ipproto))}"
    return fam


def proto_rows(m: Any, clear: bool = True) -> list[dict[str, Any]]:
    """The ``protos`` map as rows (read and, for per-interval counts, deleted)."""
    rows = []
    for k, v in list(m.items()):
        if clear:
            m.delete(k)
        rows.append({"proto": proto_name(k.ethertype, k.ipproto), "ethertype": k.ethertype,
                     "ipproto": k.ipproto, "direction": "out" if k.outgoing else "in",
                     "packets": v.packets, "bytes": v.bytes})
    rows.sort(key=lambda r: (-r["packets"], r["proto"], r["direction"]))
    return rows


def print_rows(rows: list[dict[str, Any]], args: argparse.Namespace, extra: str = "") -> None:
    if args.json:
        print(json.dumps({"time": time.time(), **({"hook": extra} if extra else {}),
                          "protocols": rows}), flush=True)
        return
    stamp = datetime.now().strftime("%H:%M:%S") + " " if args.time else ""
    print(f"{stamp}{'PROTO':<14} {'DIR':<4} {'PACKETS':>10} {'BYTES':>12}")
    for r in rows:
        print(f"{stamp}{r['proto']:<14} {r['direction']:<4} {r['packets']:>10} {r['bytes']:>12}")
    print(flush=True)


# A few Ethernet frames for --demo: TCP, UDP and ICMP over IPv4, ICMPv6 over IPv6, and ARP.
def _frame(ethertype: int, payload: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + \
        struct.pack("!H", ethertype) + payload


def _ipv4(proto: int, size: int) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + size, 0, 0, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + bytes(size)


def _ipv6(nxt: int, size: int) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, size, nxt, 64, bytes(15) + b"\x01",
                       bytes(15) + b"\x02") + bytes(size)


DEMO_FRAMES = [_frame(0x0800, _ipv4(6, 40)), _frame(0x0800, _ipv4(6, 40)),
               _frame(0x0800, _ipv4(17, 28)), _frame(0x0800, _ipv4(1, 16)),
               _frame(0x86DD, _ipv6(58, 16)), _frame(0x0806, bytes(28))]


class SockFilter(Tool):
    name = "sockfilter"
    help = "count packets per protocol seen by a socket filter"
    interval_tool = True
    options = ("pid", "cgroup", "name", "time", "duration", "interval")
    differs = "BCC has no sockfilter (its examples/networking programs are the model)."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--interface", help="only packets of this interface "
                       "(default: all interfaces of this network namespace)")
        p.add_argument("--demo", action="store_true",
                       help="filter a socket pair fed with sample frames (no network needed)")
        p.add_argument("--cumulative", action="store_true",
                       help="totals since start instead of per-interval counts")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe("count_packets", options={"sock": self._sock})]

    def run(self, args: argparse.Namespace) -> int:
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self._peer: socket.socket | None = None
        if args.demo:
            self._sock, self._peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        else:
            # Unbound until the filter is on (started()), so nothing unfiltered is queued.
            from ..attach.net import packet_socket
            self._sock = packet_socket()
        try:
            return super().run(args)
        finally:
            self._stop.set()
            if self._feeder is not None:
                self._feeder.join()
            self._sock.close()
            if self._peer is not None:
                self._peer.close()

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        if args.demo:
            self._feeder = threading.Thread(target=self._feed, daemon=True)
            self._feeder.start()
            where = "socket pair (demo)"
        else:
            eth_p_all = 0x0003
            # Bound to no interface (ifindex 0), an AF_PACKET socket sees them all.
            self._sock.bind((args.interface or "", eth_p_all))
            where = f"raw socket on {args.interface or 'all interfaces'}"
        self._where = where
        if args.verbose:
            print(f"# socket filter on a {where}", file=sys.stderr)

    def _feed(self) -> None:
        assert self._peer is not None
        while not self._stop.wait(0.05):
            for f in DEMO_FRAMES:
                try:
                    self._peer.send(f)
                except OSError:
                    return

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        print_rows(proto_rows(m.map("protos"), clear=not args.cumulative), args)


TOOL = SockFilter()
