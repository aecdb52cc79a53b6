"""bashreadline: print the commands typed in bash, from a uretprobe on ``readline``.

bash links readline in, so the probe goes on ``/usr/bin/bash`` itself; ``--binary`` names
another bash, or a ``libreadline.so`` that other programs share.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..manager import Probe
from ._hooks import HookTool
from .base import plain


class BashReadline(HookTool):
    name = "bashreadline"
    help = "print commands typed in bash (uretprobe on readline)"
    events_map = "events"
    record = "event"

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
        # the time column is always there (as in BCC); -T would only repeat it
        return f"{'PID':>7} COMMAND" if args.timestamp else f"{'TIME':<8} {'PID':>7} COMMAND"

    def format(self, rec: Any, args: argparse.Namespace) -> str:
        line = f"{rec.pid:>7} {plain(rec.line)}"
        return line if args.timestamp else f"{time.strftime('%H:%M:%S')} {line}"

    def to_json(self, rec: Any, args: argparse.Namespace) -> Any:
        return {"pid": rec.pid, "uid": rec.uid, "comm": plain(rec.comm),
                "command": plain(rec.line)}


TOOL = BashReadline()
