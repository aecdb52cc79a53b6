"""exitsnoop: trace process exits: age, exit code or the signal that ended them.

sched:sched_process_exit runs in the exiting task after ``do_exit()`` stored its exit
code (tp_btf, else the tracepoint), so the code, the age and the parent are read from the
task itself.  Only thread-group leaders (process exits) unless ``--per-thread``.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from ..manager import Probe
from .base import SNOOP_OPTIONS, Tool, plain

HOOK_NAMES = {0: "tracepoint", 1: "raw_tp", 2: "tp_btf", 3: "kprobe", 4: "fentry", 5: "uprobe"}


def decode_exit(code: int) -> tuple[int | None, int | None, bool]:
    """(exit status, terminating signal, core dumped) of a wait status."""
    sig = code & 0x7F
    if sig:
        return None, sig, bool(code & 0x80)
    return (code >> 8) & 0xFF, None, False


def describe_exit(code: int) -> str:
    """BCC's EXIT_CODE column: ``0``, ``code 3`` or ``signal 9 (KILL)``."""
    status, sig, core = decode_exit(code)
    if sig is not None:
        try:
            name = signal.Signals(sig).name.removeprefix("SIG")
        except ValueError:
            name = "?"
        return f"signal {sig} ({name})" + (", core dumped" if core else "")
    return "0" if status == 0 else f"code {status}"


class ExitSnoop(Tool):
    name = "exitsnoop"
    help = "trace process exits: age, exit code or terminating signal"
    events_map = "events"
    record = "event"
    bcc = "exitsnoop"
    options = (*SNOOP_OPTIONS, "failed")
    flags = {"timestamp": ("-t", "--timestamp"), "time": ("-T", "--time"), "tid": ("--tid",)}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    failed_help = "only exits with a non-zero code or by a signal (as BCC's exitsnoop)"
    hook_families = ("tp_btf", "tracepoint")
    differs = "--utc and --label are not implemented; -c PATH is a cgroup v2 path."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--per-thread", action="store_true",
                       help="every thread's exit, not only whole processes")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_failed": bool(args.failed), "targ_threads": bool(args.per_thread)}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_exit", "tp_exit"])]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'PCOMM':<16} {'PID':>7} {'PPID':>7} {'TID':>7} {'AGE(s)':>8} EXIT_CODE"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        age = max(rec.ts_ns - rec.start_ns, 0) / 1e9
        return (f"{plain(rec.comm):<16} {rec.pid:>7} {rec.ppid:>7} {rec.tid:>7} "
                f"{age:>8.2f} {describe_exit(rec.exit_code)}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        status, sig, core = decode_exit(rec.exit_code)
        return {"comm": plain(rec.comm), "pid": rec.pid, "ppid": rec.ppid, "tid": rec.tid,
                "uid": rec.uid, "age_s": max(rec.ts_ns - rec.start_ns, 0) / 1e9,
                "exit_code": status, "signal": sig, "core_dumped": core,
                "raw_exit_code": rec.exit_code, "hook": HOOK_NAMES.get(rec.hook, "?")}


TOOL = ExitSnoop()
