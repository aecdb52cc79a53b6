"""netrx: packets and bytes received per network device, every interval.

kprobe on ``__netif_receive_skb_core`` where kprobes exist, else tp_btf
``netif_receive_skb``, else the plain tracepoint; all three see loopback traffic too.
Devices are counted by name (the same name in two network namespaces adds up).
"""

from __future__ import annotations

import argparse

from ..manager import Manager, Probe
from .base import INTERVAL_OPTIONS, Column, Tool, kernel_symbol


class NetRx(Tool):
    name = "netrx"
    help = "packets received per device: name, count, bytes"
    interval_tool = True
    options = INTERVAL_OPTIONS
    filters: dict[str, str] = {}   # packets arrive in softirq context, not in a process
    hook_families = ("kprobe", "tp_btf", "tracepoint")
    differs = "BCC has no netrx (bpftrace's netif_receive_skb one-liners are the model)."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--interface", action="append",
                       help="only this device (repeatable)")
        p.add_argument("--cumulative", action="store_true",
                       help="do not clear the counts after each interval")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        # a static function: some kernels only have a clone (.constprop.0)
        sym = kernel_symbol("__netif_receive_skb_core")
        opts = {"func": sym} if sym != "__netif_receive_skb_core" else {}
        return [self.hook_probe(args, ["kprobe_netif_rx", "tp_btf_netif_rx", "tp_netif_rx"],
                                options=opts)]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        rx = m.map("rx")
        rows = [(str(k), int(v.packets), int(v.bytes)) for k, v in rx.items()]
        if not args.cumulative:
            for name, _, _ in rows:
                rx.delete(name)
        if args.interface:
            rows = [r for r in rows if r[0] in args.interface]
        rows.sort(key=lambda r: (-r[1], r[0]))
        secs = args.interval or 1.0
        table = [{"device": name, "packets": pk, "bytes": by, "pkt_s": round(pk / secs, 1),
                  "kb_s": round(by / secs / 1024, 1)} for name, pk, by in rows]
        self.print_table(table, [Column("DEVICE", "<16", "device"),
                                 Column("PACKETS", ">10", "packets"),
                                 Column("BYTES", ">12", "bytes"),
                                 Column("PKT/s", ">9.1f", "pkt_s"),
                                 Column("KB/s", ">9.1f", "kb_s")], args)


TOOL = NetRx()
