"""biolatency: block device I/O latency as a log2 histogram, every interval.

From issue (``-Q``: from insertion into the queue) to completion: tp_btf on the block
request tracepoints (requests keyed by address), else the tracepoints themselves (keyed by
device and sector).  ``-D`` one histogram per disk, ``-F`` per operation.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Manager, Probe
from ._block import OPS, disk_dev, disk_name
from ._hist import drain_log2
from .base import Tool


class BioLatency(Tool):
    name = "biolatency"
    help = "block device I/O latency as a histogram"
    bcc = "biolatency"
    interval_tool = True
    options = ("time", "duration", "interval")
    flags = {"duration": ("--duration",)}
    hook_families = ("tp_btf", "tracepoint")
    differs = ("--duration S stops after S seconds (-d is the disk, as in BCC); -e and "
               "-j are not implemented; I/O is completed in interrupts, so there is no "
               "process filter.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="millisecond histogram")
        p.add_argument("-Q", "--queued", action="store_true",
                       help="include the time queued in the kernel")
        g = p.add_mutually_exclusive_group()
        g.add_argument("-D", "--disks", action="store_true", help="one histogram per disk")
        g.add_argument("-F", "--flags", action="store_true",
                       help="one histogram per operation (read, write, flush...)")
        p.add_argument("-d", "--disk", help="only this disk (vda, /dev/vda or MAJ:MIN)")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_ms": bool(args.milliseconds), "targ_per_disk": bool(args.disks),
                "targ_per_flag": bool(args.flags),
                "targ_dev": disk_dev(args.disk) if args.disk else 0}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        events = (["insert"] if args.queued else []) + ["issue", "complete"]
        return [self.hook_probe(args, [f"tp_btf_{e}", f"tp_{e}"]) for e in events]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        hists = drain_log2(m, "hist", "msecs" if args.milliseconds else "usecs")
        if args.disks:
            self.print_histograms(hists, args, section=lambda s: f"disk = {disk_name(s)}",
                                  json_section=lambda s: {"disk": disk_name(s)})
        elif args.flags:
            self.print_histograms(hists, args, section=lambda s: f"flags = {OPS[s]}",
                                  json_section=lambda s: {"flags": OPS[s]})
        else:
            self.print_histograms(hists, args, json_section=lambda s: {})


TOOL = BioLatency()
