"""oomkill: out-of-memory kills, as BCC's one line per kill: who triggered it, who was
killed, the victim's pages and the load average (read when the event arrives).

oom:mark_victim fires in the task whose allocation ran out (tp_btf, else tracepoint).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from .base import Tool, plain

HOOK_NAMES = {0: "tracepoint", 2: "tp_btf"}


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "?"


class OomKill(Tool):
    name = "oomkill"
    help = "trace out-of-memory kills: trigger, victim, pages"
    bcc = "oomkill"
    events_map = "events"
    record = "event"
    options = ("duration",)
    hook_families = ("tp_btf", "tracepoint")
    differs = ("'pages' is the victim's total_vm (the tracepoint has no OOM constraint size, "
               "which BCC's kprobe reads).")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_victim", "tp_victim"])]

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        t = time.strftime("%H:%M:%S", time.localtime(self.record_time(rec)))
        return (f'{t} Triggered by PID {rec.fpid} ("{plain(rec.fcomm)}"), OOM kill of PID '
                f'{rec.tpid} ("{plain(rec.tcomm)}"), {rec.total_vm} pages, '
                f"loadavg: {_loadavg()}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"trigger_pid": rec.fpid, "trigger_comm": plain(rec.fcomm),
                "victim_pid": rec.tpid, "victim_comm": plain(rec.tcomm), "uid": rec.uid,
                "pages": rec.total_vm, "loadavg": _loadavg(),
                "hook": HOOK_NAMES.get(rec.hook, "?")}


TOOL = OomKill()
