"""bitesize: block I/O sizes (Kbytes) as a log2 histogram per process name, every
interval (BCC's prints once at Ctrl-C; ``--duration`` with no interval does the same).

The name is the process issuing the request: tp_btf on block_rq_issue, else the tracepoint.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Manager, Probe
from ._block import disk_dev
from ._hist import drain_log2
from .base import INTERVAL_OPTIONS, Tool, plain


def _split_comm(k: Any) -> tuple[str, int]:
    return plain(k.comm), int(k.slot)


class BiteSize(Tool):
    name = "bitesize"
    help = "block I/O sizes as a histogram per process name"
    bcc = "bitesize"
    interval_tool = True
    options = INTERVAL_OPTIONS
    flags = {"duration": ("--duration",)}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    hook_families = ("tp_btf", "tracepoint")
    differs = ("BCC's bitesize has no options and prints at Ctrl-C; this one is an interval "
               "tool with the usual filters (of the process issuing the request), and "
               "-d DISK as biolatency's.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-d", "--disk", help="only this disk (vda, /dev/vda or MAJ:MIN)")

    def constants(self, args: argparse.Namespace) -> dict[str, int]:
        return {"targ_dev": disk_dev(args.disk) if args.disk else 0}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_issue", "tp_issue"])]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        hists = drain_log2(m, "hist", "Kbytes", split=_split_comm)
        self.print_histograms(hists, args, section=lambda s: f"Process Name = {s}",
                              json_section=lambda s: {"comm": s})


TOOL = BiteSize()
