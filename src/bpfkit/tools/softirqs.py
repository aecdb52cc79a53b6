"""softirqs: time spent in soft interrupts per vector, every interval: totals (``-C`` adds
the count) or ``-d`` one log2 histogram per vector.

tp_btf on irq:softirq_entry/exit, else raw_tp, else the tracepoints; per-CPU entry times.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Manager, Probe
from ._hist import drain_log2
from .base import Column, Tool

VECTORS = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched",
           "hrtimer", "rcu"]


def _sum_cpus(v: Any) -> tuple[int, int]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return sum(int(x.time) for x in vals), sum(int(x.count) for x in vals)


class SoftIrqs(Tool):
    name = "softirqs"
    help = "time spent in soft interrupts, per vector"
    bcc = "softirqs"
    interval_tool = True
    options = ("time", "duration", "interval")
    flags = {"duration": ("--duration",)}
    hook_families = ("tp_btf", "raw_tp", "tracepoint")
    differs = ("--duration S stops after S seconds; -c CPU is not implemented; -C adds a "
               "COUNT column (libbpf-tools).")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-N", "--nanoseconds", action="store_true", help="times in nsecs")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-d", "--dist", action="store_true", help="histograms of times")
        g.add_argument("-C", "--count", dest="events", action="store_true", help="show event counts too")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_dist": bool(args.dist), "targ_ns": bool(args.nanoseconds)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, [f"tp_btf_{e}", f"raw_tp_{e}", f"tp_{e}"])
                for e in ("entry", "exit")]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        unit = "nsecs" if args.nanoseconds else "usecs"
        if args.dist:
            hists = drain_log2(m, "hist", unit)
            self.print_histograms(hists, args, section=lambda s: f"softirq = {VECTORS[s]}",
                                  json_section=lambda s: {"softirq": VECTORS[s]})
            return
        tmap = m.map("totals")
        rows: list[dict[str, Any]] = []
        for k, v in list(tmap.items()):
            t, n = _sum_cpus(v)
            if n:
                rows.append({"softirq": VECTORS[int(k)], f"total_{unit}": t, "count": n})
        tmap.clear()
        rows.sort(key=lambda r: -r[f"total_{unit}"])
        cols = [Column("SOFTIRQ", "<16", "softirq"), Column(f"TOTAL_{unit}", ">11",
                                                            f"total_{unit}")]
        if args.events:
            cols.append(Column("COUNT", ">10", "count"))
        self.print_table(rows, cols, args, stamp=bool(args.time))


TOOL = SoftIrqs()
