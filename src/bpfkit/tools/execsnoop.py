"""execsnoop: trace every exec() with pid, ppid, uid, return code and argv.

Flags as BCC's execsnoop: ``-x`` includes failed execs (hidden by default), ``-T`` a TIME
column, ``-t`` a TIME(s) column, ``-U`` a UID column, ``-u UID``, ``-n NAME``; ``-c PATH``
is libbpf-tools' cgroup filter.  Every filter runs in the BPF code.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..manager import Probe
from .base import Tool, plain


class ExecSnoop(Tool):
    name = "execsnoop"
    help = "trace exec() calls: pid, ppid, uid, return code, argv"
    events_map = "events"
    record = "event"
    bcc = "execsnoop"
    options = ("pid", "uid", "cgroup", "name", "failed", "time", "timestamp", "print_uid",
               "duration")
    flags = {"timestamp": ("-t", "--timestamp")}
    filters = {"pid": "targ_pid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "include failed exec()s"
    differs = ("-n NAME matches the whole process name (the new program's comm) in the "
               "kernel, not a regular expression; -p PID is ours (the calling process); "
               "-q, -l and --max-args are not implemented.")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe("tp_enter_execve"), Probe("tp_exit_execve")]

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_failed": True} if args.failed else {}

    def _argv(self, rec: Any) -> list[str]:
        a = rec.args
        raw = a.encode() if isinstance(a, str) else bytes(a)
        out = []
        for i in range(rec.args_count):
            chunk = raw[i * 128:(i + 1) * 128]
            out.append(chunk.split(b"\0", 1)[0].decode(errors="replace"))
        return out

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PCOMM':<16} {'PID':>7} {'PPID':>7} {'RET':>4} ARGS"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return (f"{plain(rec.comm):<16} {rec.pid:>7} {rec.ppid:>7} "
                f"{rec.retval:>4} {' '.join(self._argv(rec))}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"comm": plain(rec.comm), "pid": rec.pid, "ppid": rec.ppid, "uid": rec.uid,
                "retval": rec.retval, "argv": self._argv(rec)}


TOOL = ExecSnoop()
