"""statsnoop: trace stat-family calls (stat, lstat, fstatat, statx, statfs): path, result.

Columns as BCC's statsnoop (``PID COMM RET ERR PATH``; BCC calls RET "FD").  Syscall
tracepoints; stat/lstat/statfs are optional probes (some architectures lack them).
"""

from __future__ import annotations

import argparse
import errno
from typing import Any

from ..manager import Probe
from .base import SNOOP_OPTIONS, Tool, plain

CALLS = ["stat", "lstat", "fstatat", "statx", "statfs"]
SYSCALLS = [("newstat", True), ("newlstat", True), ("newfstatat", False), ("statx", False),
            ("statfs", True)]


class StatSnoop(Tool):
    name = "statsnoop"
    help = "trace stat() calls: process, path, result"
    events_map = "events"
    record = "event"
    bcc = "statsnoop"
    options = (*SNOOP_OPTIONS, "failed")
    flags = {"timestamp": ("-t", "--timestamp"), "time": ("-T", "--time"), "tid": ("--tid",)}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "only failed stats (as BCC's statsnoop)"
    differs = "the result column is RET (BCC: FD, also the stat return value); -c PATH is a cgroup v2 path."

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_failed": bool(args.failed)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe(f"tp_{d}_{s}", optional=opt) for s, opt in SYSCALLS
                for d in ("enter", "exit")]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PID':<7} {'COMM':<16} {'RET':>3} {'ERR':>3} PATH"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        ret, err = (rec.ret, 0) if rec.ret >= 0 else (-1, -rec.ret)
        return f"{rec.pid:<7} {plain(rec.comm):<16} {ret:>3} {err:>3} {plain(rec.path)}"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        err = -rec.ret if rec.ret < 0 else 0
        return {"pid": rec.pid, "tid": rec.tid, "uid": rec.uid, "comm": plain(rec.comm),
                "call": CALLS[rec.call] if rec.call < len(CALLS) else "?", "ret": rec.ret,
                "errno": err, "error": errno.errorcode.get(err) if err else None,
                "path": plain(rec.path)}


TOOL = StatSnoop()
