"""netrx: packets and bytes received per network device, every interval.

kprobe on ``__netif_receive_skb_core`` where kprobes exist, else tp_btf
``netif_receive_skb``, else the plain tracepoint; all three see loopback traffic too.
Devices are counted by name (the same name in two network namespaces adds up).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..manager import Manager, Probe
from ._hooks import HookTool, add_hook_arg, chain, kernel_symbol


class NetRx(HookTool):
    name = "netrx"
    help = "packets received per device: name, count, bytes"
    interval_tool = True

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--interface", action="append",
                       help="only this device (repeatable)")
        p.add_argument("--cumulative", action="store_true",
                       help="do not clear the counts after each interval")
        add_hook_arg(p, ["kprobe", "tp_btf", "tracepoint"])

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        prog, fb = chain(["kprobe_netif_rx", "tp_btf_netif_rx", "tp_netif_rx"], args.hook)
        # a static function: some kernels only have a clone (.constprop.0)
        sym = kernel_symbol("__netif_receive_skb_core")
        opts = {"func": sym} if sym != "__netif_receive_skb_core" else {}
        return [Probe(prog, fallbacks=fb, options=opts)]

    def started(self, m: Manager, args: argparse.Namespace) -> None:
        if args.pid or args.comm or args.cgroup:
            print("# netrx: packets are received in softirq context, not by a process: "
                  "-p/-c/--cgroup do not apply", file=sys.stderr)

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
        if args.json:
            now = time.time()
            for name, pk, by in rows:
                print(json.dumps({"time": now, "device": name, "packets": pk, "bytes": by}),
                      flush=True)
            return
        print(f"[{time.strftime('%H:%M:%S')}]")
        print(f"{'DEVICE':<16} {'PACKETS':>10} {'BYTES':>12} {'PKT/s':>9} {'KB/s':>9}")
        for name, pk, by in rows:
            print(f"{name:<16} {pk:>10} {by:>12} {pk / secs:>9.1f} {by / secs / 1024:>9.1f}")
        print(flush=True)


TOOL = NetRx()
