"""bashreadline: print the commands typed in bash, from a uretprobe on ``readline``.

bash links readline in, so the probe goes on ``/usr/bin/bash`` itself; ``--binary`` names
another bash, or a ``libreadline.so`` that other programs share.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from .base import Tool, plain


class BashReadline(Tool):
    name = "bashreadline"
    help = "print commands typed in bash (uretprobe on readline)"
    events_map = "events"
    record = "event"
    bcc = "bashreadline"
    options = ("pid", "uid", "cgroup", "name", "print_uid", "duration")
    filters = {"pid": "tool", "uid": "targ_uid", "cgroup": "targ_cgid", "name": "targ_comm"}
    differs = ("--binary replaces BCC's -s SHARED (a libreadline.so or another bash); the TIME "
               "column is always there, as in BCC.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--binary", help="the bash (or libreadline) to probe "
                       "(default /usr/bin/bash)")
        p.add_argument("--symbol", default="readline", help="the function (default readline)")

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        binary = args.binary
        if binary is None and args.symbol != "readline":
            binary = "/usr/bin/bash"
        kw: dict[str, Any] = {}
        if binary is not None:
            kw.update(binary=binary, symbol=args.symbol)
        if args.pid:
            kw["pid"] = args.pid
        return [Probe("uretprobe_readline", **kw)]

    def header(self, args: argparse.Namespace) -> str:
        return f"{'TIME':<8} {'PID':>7} COMMAND"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        return f"{time.strftime('%H:%M:%S')} {rec.pid:>7} {plain(rec.line)}"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "uid": rec.uid, "comm": plain(rec.comm),
                "command": plain(rec.line)}


TOOL = BashReadline()
