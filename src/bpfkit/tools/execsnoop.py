"""execsnoop: trace every exec() with pid, ppid, uid, return code and argv."""

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

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe("tp_enter_execve"), Probe("tp_exit_execve")]

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-x", "--fails", action="store_true", help="only failed execs")

    def _argv(self, rec: Any) -> list[str]:
        a = rec.args
        raw = a.encode() if isinstance(a, str) else bytes(a)
        out = []
        for i in range(rec.args_count):
            chunk = raw[i * 128:(i + 1) * 128]
            out.append(chunk.split(b"\0", 1)[0].decode(errors="replace"))
        return out

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        if args.fails and rec.retval == 0:
            return False
        return super().keep(rec, args)

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PCOMM':<16} {'PID':>7} {'PPID':>7} {'UID':>6} {'RET':>4} ARGS"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return (f"{plain(rec.comm):<16} {rec.pid:>7} {rec.ppid:>7} {rec.uid:>6} "
                f"{rec.retval:>4} {' '.join(self._argv(rec))}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"comm": plain(rec.comm), "pid": rec.pid, "ppid": rec.ppid, "uid": rec.uid,
                "retval": rec.retval, "argv": self._argv(rec)}


TOOL = ExecSnoop()
