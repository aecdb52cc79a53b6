"""mkdirsnoop: trace directory creation with the mode and the result.

fentry/fexit (else kprobe/kretprobe) on ``vfs_mkdir`` see every mkdir, also those the
kernel makes itself, and report the new entry's name; where neither is allowed the
sys_enter/sys_exit tracepoints of mkdirat and mkdir report the path as the caller gave it.
"""

from __future__ import annotations

import argparse
import errno
from typing import Any

from ..manager import Probe
from .base import SNOOP_OPTIONS, Tool, companions, plain
from .opensnoop import HOOK_NAMES


class MkdirSnoop(Tool):
    name = "mkdirsnoop"
    help = "trace directory creation with the return value"
    events_map = "events"
    record = "event"
    options = (*SNOOP_OPTIONS, "failed")
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "only failed mkdirs (as opensnoop's -x)"
    hook_families = ("fentry", "kprobe", "tracepoint")
    differs = "BCC has no mkdirsnoop; flags follow opensnoop's, but -T is a HH:MM:SS column."

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        enter = self.hook_probe(args, ["fentry_mkdir", "kprobe_mkdir", "tp_enter_mkdirat"])
        exit_ = self.hook_probe(args, ["fexit_mkdir", "kretprobe_mkdir", "tp_exit_mkdirat"])
        return [enter, exit_, *companions(enter.program, ["tp_enter_mkdir"]),
                *companions(exit_.program, ["tp_exit_mkdir"])]

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        return not (args.failed and rec.ret == 0)

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PID':>7} {'COMM':<16} {'MODE':>5} {'RET':>4} {'ERROR':<8} NAME"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        err = errno.errorcode.get(-rec.ret, str(-rec.ret)) if rec.ret < 0 else ""
        return (f"{rec.pid:>7} {plain(rec.comm):<16} {rec.mode & 0o7777:>5o} {rec.ret:>4} "
                f"{err:<8} {plain(rec.name)}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "tid": rec.tid, "uid": rec.uid, "comm": plain(rec.comm),
                "mode": rec.mode & 0o7777, "ret": rec.ret,
                "error": errno.errorcode.get(-rec.ret, str(-rec.ret)) if rec.ret < 0 else None,
                "name": plain(rec.name), "hook": HOOK_NAMES.get(rec.hook, str(rec.hook))}


TOOL = MkdirSnoop()
