"""syncsnoop: trace calls that flush data to storage: sync, syncfs, fsync, fdatasync,
msync, sync_file_range.

BCC's syncsnoop prints ``TIME(s) CALL`` for sync() only; this follows libbpf-tools'
wider set and adds the process and the fd (``TIME(s) PID COMM CALL FD``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

CALLS = ["sync", "syncfs", "fsync", "fdatasync", "msync", "sync_file_range"]


class SyncSnoop(Tool):
    name = "syncsnoop"
    help = "trace sync(), fsync() and other flushes to storage"
    events_map = "events"
    record = "event"
    bcc = "syncsnoop"
    options = TRACE_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("traces syncfs, fsync, fdatasync, msync and sync_file_range too (libbpf-tools), "
               "with PID, COMM and FD columns.")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe(f"tp_enter_{c}", optional=c != "sync") for c in CALLS]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'TIME(s)':<18} {'PID':>7} {'COMM':<16} {'CALL':<16} FD"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        fd = "-" if rec.fd < 0 else str(rec.fd)
        return (f"{self.record_time(rec):<18.6f} {rec.pid:>7} {plain(rec.comm):<16} "
                f"{CALLS[rec.call]:<16} {fd}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "tid": rec.tid, "comm": plain(rec.comm),
                "call": CALLS[rec.call], "fd": rec.fd if rec.fd >= 0 else None}


TOOL = SyncSnoop()
