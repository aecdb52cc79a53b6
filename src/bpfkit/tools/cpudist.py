"""cpudist: on-CPU time per run (or off-CPU time, -O) as a log2 histogram, every interval.

How long a task runs each time it is on a CPU, from switch-in to switch-out (with -O, how
long it stays off-CPU): tp_btf on sched_switch, else raw_tp.  Options, sections and output
are runqlat's, whose class this extends.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from .runqlat import RunqLat


class CpuDist(RunqLat):
    name = "cpudist"
    help = "on-CPU (or off-CPU) time per scheduling as a histogram"
    bcc = "cpudist"
    differs = ("-t TID filters one thread; -I and -e are not implemented; the pid filter "
               "applies to the task switched in or out (not to the CPU's current task), so "
               "-u, -n and -c are refused.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
        super().add_args(p)

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {**super().constants(args), "targ_offcpu": bool(args.offcpu)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_switch", "raw_tp_switch"])]


TOOL = CpuDist()
