"""cpudist: on-CPU time per run (or off-CPU time, -O) as a log2 histogram, every interval.

How long a task runs each time it is on a CPU, from switch-in to switch-out (with -O, how
long it stays off-CPU): tp_btf on sched_switch, else raw_tp.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Manager, Probe
from ._hist import drain_log2
from .base import Tool


class CpuDist(Tool):
    name = "cpudist"
    help = "on-CPU (or off-CPU) time per scheduling as a histogram"
    bcc = "cpudist"
    interval_tool = True
    options = ("pid", "tid", "time", "duration", "interval")
    filters = {"pid": "targ_pid", "tid": "targ_tid"}
    hook_families = ("tp_btf", "raw_tp")
    differs = ("-t TID filters one thread; -I and -e are not implemented; the pid filter "
               "applies to the task switched in or out (not to the CPU's current task), so "
               "-u, -n and -c are refused.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="millisecond histogram")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-P", "--pids", action="store_true", help="one histogram per process")
        g.add_argument("-L", "--tids", action="store_true", help="one histogram per thread")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_offcpu": bool(args.offcpu), "targ_ms": bool(args.milliseconds), "targ_per_process": bool(args.pids),
                "targ_per_thread": bool(args.tids)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_switch", "raw_tp_switch"])]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        word = "pid" if args.pids else "tid" if args.tids else None
        hists = drain_log2(m, "hist", "msecs" if args.milliseconds else "usecs")
        self.print_histograms(
            hists, args, section=(lambda s: f"{word} = {s}") if word else None,
            json_section=lambda s: {word: s} if word else {})


TOOL = CpuDist()
