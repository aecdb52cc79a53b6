"""runqlat: run queue (scheduler) latency as a log2 histogram, every interval.

The time from a task becoming runnable (woken, new, or preempted while still runnable) to
running on a CPU: tp_btf on sched_wakeup/sched_wakeup_new/sched_switch, else raw_tp.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Manager, Probe
from ._hist import drain_log2
from .base import Tool

EVENTS = ("wakeup", "wakeup_new", "switch")


class RunqLat(Tool):
    name = "runqlat"
    help = "run queue (scheduler) latency as a histogram"
    bcc = "runqlat"
    interval_tool = True
    options = ("pid", "tid", "time", "duration", "interval")
    filters = {"pid": "targ_pid", "tid": "targ_tid"}
    hook_families = ("tp_btf", "raw_tp")
    differs = ("-t TID filters one thread; --pidnss is not implemented; the pid filter "
               "applies to the task that waits (not to the CPU's current task), so "
               "-u, -n and -c are refused.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="millisecond histogram")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-P", "--pids", action="store_true", help="one histogram per process")
        g.add_argument("-L", "--tids", action="store_true", help="one histogram per thread")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_ms": bool(args.milliseconds), "targ_per_process": bool(args.pids),
                "targ_per_thread": bool(args.tids)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, [f"tp_btf_{e}", f"raw_tp_{e}"]) for e in EVENTS]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        word = "pid" if args.pids else "tid" if args.tids else None
        hists = drain_log2(m, "hist", "msecs" if args.milliseconds else "usecs")
        self.print_histograms(
            hists, args, section=(lambda s: f"{word} = {s}") if word else None,
            json_section=lambda s: {word: s} if word else {})


TOOL = RunqLat()
