"""writesize: log2 histogram of write() sizes per process (pid, uid, comm).

An interval tool: every interval it prints one BCC-style histogram per key and clears the
map.  fentry (else kprobe) on ``vfs_write`` counts every write path; the sys_enter_write
tracepoint is the fallback.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..histogram import Histogram, counts_from_items, log2_buckets
from ..manager import Manager, Probe
from .base import INTERVAL_OPTIONS, Tool


def _split(k: Any) -> tuple[Any, int]:
    return (int(k.pid), int(k.uid), str(k.comm)), int(k.slot)


class WriteSize(Tool):
    name = "writesize"
    help = "log2 histogram of write() sizes per pid, uid and comm"
    interval_tool = True
    options = INTERVAL_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    hook_families = ("fentry", "kprobe", "tracepoint")
    differs = "BCC has no writesize (bpftrace's writesize.bt is the model)."

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["fentry_write", "kprobe_write", "tp_enter_write"])]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        hmap = m.map("hist")
        items = list(hmap.items())
        hmap.clear()
        hists = [Histogram("log2", log2_buckets(c), section=sec, val_type="bytes")
                 for sec, c in counts_from_items(items, _split).items()]
        hists.sort(key=lambda h: (-h.total, h.section))
        self.print_histograms(
            hists, args, section=lambda s: f"pid = {s[0]}, uid = {s[1]}, comm = {s[2]}",
            json_section=lambda s: {"pid": s[0], "uid": s[1], "comm": s[2]})


TOOL = WriteSize()
