"""gethostlatency: latency of host name lookups (getaddrinfo, gethostbyname,
gethostbyname2) in libc, with the process and the host, from uprobes and uretprobes.

A uretprobe's return value means "error" differently per function (getaddrinfo: non-zero;
gethostbyname: NULL); JSON has both the raw value and the function.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from .base import TRACE_OPTIONS, Tool, plain

FUNCS = ("getaddrinfo", "gethostbyname", "gethostbyname2")


class GetHostLatency(Tool):
    name = "gethostlatency"
    help = "latency of host name lookups (getaddrinfo...) in libc"
    bcc = "gethostlatency"
    events_map = "events"
    record = "event"
    options = TRACE_OPTIONS
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("--libc picks another C library (e.g. a container's); -c PATH is a cgroup "
               "v2 path.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--libc", default="libc.so.6",
                       help="the C library to probe (default: libc.so.6 from ld.so.cache)")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        kw: dict[str, Any] = {"binary": args.libc}
        if args.pid:
            kw["pid"] = args.pid
        out = []
        for f in FUNCS:
            out.append(Probe("uprobe_lookup", uid=f"enter:{f}", symbol=f, **kw))
            out.append(Probe("uretprobe_lookup", uid=f"exit:{f}", symbol=f, **kw))
        return out

    def header(self, args: argparse.Namespace) -> str:
        return f"{'TIME':<9} {'PID':<7} {'COMM':<16} {'LATms':>10} HOST"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        t = time.strftime("%H:%M:%S", time.localtime(self.record_time(rec)))
        return (f"{t:<9} {rec.pid:<7} {plain(rec.comm):<16} {rec.delta_ns / 1e6:>10.2f} "
                f"{plain(rec.host)}")

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "tid": rec.tid, "uid": rec.uid, "comm": plain(rec.comm),
                "lat_ms": rec.delta_ns / 1e6, "host": plain(rec.host), "ret": rec.ret}


TOOL = GetHostLatency()
