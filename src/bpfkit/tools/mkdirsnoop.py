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
from ._hooks import HookTool, add_hook_arg, chain, companions
from .base import plain
from .opensnoop import HOOK_NAMES


class MkdirSnoop(HookTool):
    name = "mkdirsnoop"
    help = "trace directory creation with the return value"
    events_map = "events"
    record = "event"

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-x", "--failed", action="store_true", help="only failed mkdirs")
        add_hook_arg(p, ["fentry", "kprobe", "tracepoint"])

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        enter, enter_fb = chain(["fentry_mkdir", "kprobe_mkdir", "tp_enter_mkdirat"],
                                args.hook)
        exit_, exit_fb = chain(["fexit_mkdir", "kretprobe_mkdir", "tp_exit_mkdirat"],
                               args.hook)
        return [Probe(enter, fallbacks=enter_fb), Probe(exit_, fallbacks=exit_fb),
                *companions(enter, ["tp_enter_mkdir"]), *companions(exit_, ["tp_exit_mkdir"])]

    def keep(self, rec: Any, args: argparse.Namespace) -> bool:
        if args.failed and rec.ret == 0:
            return False
        return super().keep(rec, args)

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
