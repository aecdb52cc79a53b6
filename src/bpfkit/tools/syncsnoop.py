"""syncsnoop: trace calls that flush data to storage: sync, syncfs, fsync, fdatasync,
msync, sync_file_range.

BCC's syncsnoop prints ``TIME(s) CALL`` for sync() only; this follows libbpf-tools'
wider set and adds the process and the fd (``TIME(s) PID COMM CALL FD``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from .base import Tool, plain

CALLS = ["sync", "syncfs", "fsync", "fdatasync", "msync", "sync_file_range"]


class SyncSnoop(Tool):
    name = "syncsnoop"
    help = "trace sync(), fsync() and other flushes to storage"
    events_map = "events"
    record = "event"

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe(f"tp_enter_{c}", optional=c != "sync") for c in CALLS]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'TIME(s)':<18} {'PID':>7} {'COMM':<16} {'CALL':<16} FD"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        fd = "-" if rec.fd < 0 else str(rec.fd)
        return (f"{time.time():<18.6f} {rec.pid:>7} {plain(rec.comm):<16} "
                f"{CALLS[rec.call]:<16} {fd}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "tid": rec.tid, "comm": plain(rec.comm),
                "call": CALLS[rec.call], "fd": rec.fd if rec.fd >= 0 else None}


TOOL = SyncSnoop()
