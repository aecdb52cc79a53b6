"""killsnoop: trace signals sent by kill(2), tkill(2) and tgkill(2).

The syscall tracepoints give the sender, the signal, the target and the result; the
columns are BCC's (``TIME PID COMM SIG TPID RESULT``).
"""

from __future__ import annotations

import argparse
import errno
import signal
import time
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

CALLS = {0: "kill", 1: "tkill", 2: "tgkill"}


def _signum(text: str) -> int:
    """-s accepts 9, KILL or SIGKILL."""
    if text.isdigit():
        if not 0 < int(text) < 65:
            raise argparse.ArgumentTypeError(f"signal {text} is out of range (1 to 64)")
        return int(text)
    name = text.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown signal {text!r}") from None


def signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


class KillSnoop(Tool):
    name = "killsnoop"
    help = "trace signals sent with kill(): sender, signal, target, result"
    events_map = "events"
    record = "event"
    bcc = "killsnoop"
    options = (*TRACE_OPTIONS, "failed")
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "only failed kill calls (as BCC's killsnoop)"
    differs = "tkill and tgkill are traced too (CALL in JSON); -c PATH is a cgroup v2 path."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-s", "--signal", type=_signum,
                       help="only this signal (number or name, e.g. 9, KILL)")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_failed": bool(args.failed), "targ_sig": args.signal or 0}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [Probe(p) for c in CALLS.values()
                for p in (f"tp_enter_{c}", f"tp_exit_{c}")]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'TIME':<9}{'PID':<7} {'COMM':<16} {'SIG':<4} {'TPID':<7} RESULT"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return (f"{time.strftime('%H:%M:%S'):<9}{rec.pid:<7} {plain(rec.comm):<16} "
                f"{rec.sig:<4} {rec.tpid:<7} {rec.ret}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        err = -rec.ret if rec.ret < 0 else 0
        return {"pid": rec.pid, "tid": rec.tid, "uid": rec.uid, "comm": plain(rec.comm),
                "call": CALLS.get(rec.call, "?"), "signal": rec.sig,
                "signal_name": signame(rec.sig), "target": rec.tpid, "result": rec.ret,
                "error": errno.errorcode.get(err) if err else None}


TOOL = KillSnoop()
