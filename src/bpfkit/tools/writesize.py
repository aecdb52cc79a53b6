"""writesize: log2 histogram of write() sizes per process (pid, uid, comm).

An interval tool: every interval it prints one BCC-style histogram per key and clears the
map.  fentry (else kprobe) on ``vfs_write`` counts every write path; the sys_enter_write
tracepoint is the fallback.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..histogram import Histogram, counts_from_items, log2_buckets
from ..manager import Manager, Probe
from ._hooks import HookTool, add_hook_arg, chain


def _split(k: Any) -> tuple[Any, int]:
    return (int(k.pid), int(k.uid), str(k.comm)), int(k.slot)


class WriteSize(HookTool):
    name = "writesize"
    help = "log2 histogram of write() sizes per pid, uid and comm"
    interval_tool = True

    def add_args(self, p: argparse.ArgumentParser) -> None:
        add_hook_arg(p, ["fentry", "kprobe", "tracepoint"])

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        prog, fb = chain(["fentry_write", "kprobe_write", "tp_enter_write"], args.hook)
        return [Probe(prog, fallbacks=fb)]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        hmap = m.map("hist")
        items = list(hmap.items())
        hmap.clear()
        hists = [Histogram("log2", log2_buckets(c), section=sec, val_type="bytes")
                 for sec, c in counts_from_items(items, _split).items()]
        hists.sort(key=lambda h: (-h.total, h.section))
        if args.json:
            now = time.time()
            for h in hists:
                pid, uid, comm = h.section
                print(json.dumps({"time": now, "pid": pid, "uid": uid, "comm": comm,
                                  "total": h.total,
                                  "buckets": h.to_dict()["buckets"]}), flush=True)
            return
        if args.timestamp:
            print(time.strftime("%H:%M:%S"))
        for h in hists:
            pid, uid, comm = h.section
            print(f"\npid = {pid}, uid = {uid}, comm = {comm}")
            print(h.format())
        print(flush=True)


TOOL = WriteSize()
