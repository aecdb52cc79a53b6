"""biosnoop: every block I/O request: submitting process, disk, operation, sector, size
and latency (``-Q``: also the time queued before the device got it).

block_io_start records who submitted the request (its context is the submitter's),
block_rq_issue when the device got it, block_rq_complete emits: tp_btf keyed by request
address, else the tracepoints keyed by (device, sector).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from ._block import OP_LETTERS, OPS, disk_dev, disk_name
from .base import Tool, plain

HOOK_NAMES = {0: "tracepoint", 2: "tp_btf"}


class BioSnoop(Tool):
    name = "biosnoop"
    help = "trace block device I/O: process, disk, sector, size, latency"
    bcc = "biosnoop"
    events_map = "events"
    record = "event"
    options = ("duration",)
    flags = {"duration": ("--duration",)}
    hook_families = ("tp_btf", "tracepoint")
    differs = ("--duration S stops after S seconds (-d is the disk, as in BCC); -P and -e "
               "are not implemented; TIME(s) is counted from the start of tracing.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-Q", "--queue", action="store_true",
                       help="include the time queued in the kernel (QUE(ms))")
        p.add_argument("-d", "--disk", help="only this disk (vda, /dev/vda or MAJ:MIN)")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_dev": disk_dev(args.disk) if args.disk else 0}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, [f"tp_btf_{e}", f"tp_{e}"])
                for e in ("io_start", "issue", "complete")]

    def header(self, args: argparse.Namespace) -> str:
        q = f"{'QUE(ms)':>7} " if args.queue else ""
        return (f"{'TIME(s)':<11} {'COMM':<14} {'PID':<7} {'DISK':<7} {'T':<1} "
                f"{'SECTOR':<10} {'BYTES':<7} {q}{'LAT(ms)':>7}")

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        q = f"{rec.qdelta_ns / 1e6:7.2f} " if args.queue else ""
        t = self.record_time(rec) - self._t0
        return (f"{t:<11.6f} {plain(rec.comm) or '?':<14.14} {rec.pid:<7} "
                f"{disk_name(rec.dev):<7} {OP_LETTERS.get(rec.op, '?'):<1} "
                f"{rec.sector:<10} {rec.len:<7} {q}{rec.delta_ns / 1e6:7.2f}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"comm": plain(rec.comm), "pid": rec.pid, "disk": disk_name(rec.dev),
                "dev": rec.dev, "op": OPS.get(rec.op, "Other"), "sector": rec.sector,
                "bytes": rec.len, "lat_ms": rec.delta_ns / 1e6,
                "queued_ms": rec.qdelta_ns / 1e6, "error": rec.error,
                "hook": HOOK_NAMES.get(rec.hook, "?")}


TOOL = BioSnoop()
