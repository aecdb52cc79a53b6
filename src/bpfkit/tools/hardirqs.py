"""hardirqs: time spent in hard interrupt handlers per handler name, every interval:
totals, counts (``-C``) or ``-d`` one log2 histogram per handler.

tp_btf on irq:irq_handler_entry/exit (name from the irqaction), else the tracepoints.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..histogram import Histogram, log2_buckets
from ..manager import Manager, Probe
from .base import Column, Tool, plain


class HardIrqs(Tool):
    name = "hardirqs"
    help = "time spent in hard interrupt handlers, per handler"
    bcc = "hardirqs"
    interval_tool = True
    options = ("time", "duration", "interval")
    flags = {"duration": ("--duration",)}
    hook_families = ("tp_btf", "tracepoint")
    differs = ("--duration S stops after S seconds; -c CPU is not implemented; handler "
               "names are cut at 31 characters.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-N", "--nanoseconds", action="store_true", help="times in nsecs")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-d", "--dist", action="store_true", help="histograms of times")
        g.add_argument("-C", "--count", dest="events", action="store_true",
                       help="show event counts instead of timing")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_dist": bool(args.dist), "targ_ns": bool(args.nanoseconds)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, [f"tp_btf_{e}", f"tp_{e}"]) for e in ("entry", "exit")]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        unit = "nsecs" if args.nanoseconds else "usecs"
        tmap = m.map("totals")
        per: dict[str, dict[int, tuple[int, int]]] = {}
        for k, v in list(tmap.items()):
            vals = v if isinstance(v, (list, tuple)) else [v]
            t, n = sum(int(x.time) for x in vals), sum(int(x.count) for x in vals)
            per.setdefault(plain(k.name), {})[int(k.slot)] = (t, n)
        tmap.clear()
        if args.dist:
            hists = [Histogram("log2", log2_buckets({s: n for s, (_, n) in slots.items()}),
                               section=name, val_type=unit)
                     for name, slots in sorted(per.items())]
            self.print_histograms(hists, args, section=lambda s: f"hardirq = {s}",
                                  json_section=lambda s: {"hardirq": s})
            return
        rows: list[dict[str, Any]] = [{"hardirq": name, f"total_{unit}": sum(t for t, _ in s.values()),
                 "count": sum(n for _, n in s.values())} for name, s in per.items()]
        key = "count" if args.events else f"total_{unit}"
        rows.sort(key=lambda r: -r[key])
        heading = "TOTAL_count" if args.events else f"TOTAL_{unit}"
        self.print_table(rows, [Column("HARDIRQ", "<32", "hardirq"), Column(heading, ">11", key)],
                         args, stamp=bool(args.time))


TOOL = HardIrqs()
