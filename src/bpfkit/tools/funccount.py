"""funccount: count calls of the user-space functions matching ``LIB:PATTERN`` (a library
name such as ``c``, a path, or a program; ``*`` and ``?`` globs), every interval.

One uprobe per matching symbol on one program; the attach cookie tells the functions
apart.  Kernel functions need kprobes or fentry, which this tool asks the kernel for and
refuses with its answer where they are missing.
"""

from __future__ import annotations

import argparse
import fnmatch
from typing import Any

from ..attach.uprobe import resolve_binary
from ..errors import BpfkitError
from ..manager import Manager, Probe
from .base import Column, Tool

MAX_FUNCS = 1024


def _symbols(path: str) -> list[str]:
    from ..symbolize import elf_symbols
    return sorted(set(elf_symbols(path)._names))


class FuncCount(Tool):
    name = "funccount"
    help = "count calls of user functions matching a pattern (uprobes)"
    bcc = "funccount"
    interval_tool = True
    options = ("pid", "tid", "uid", "cgroup", "name", "time", "duration")
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("user functions (LIB:PATTERN) only on kernels without kprobes/fentry, and "
               "kernel functions are not implemented yet; -r (regex) is not implemented; "
               "-i INTERVAL as BCC, --duration to stop; tracepoints: use 'bpfkit trace'.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("pattern", help="LIB:FUNC glob, e.g. c:malloc or /usr/bin/bash:read*")
        p.add_argument("-i", "--interval", type=float, default=99999999.0,
                       help="print counts every this many seconds (default: at the end)")
        p.set_defaults(count=0)

    def _targets(self, args: argparse.Namespace) -> tuple[str, list[str]]:
        if ":" not in args.pattern:
            from ..attach import features
            k = features.has_kprobes()
            why = k.reason if not k else "not implemented for kernel functions yet"
            raise BpfkitError(f"funccount: {args.pattern!r} is a kernel function pattern, "
                              f"which needs kprobes: {why}; give LIB:FUNC for user functions")
        lib, _, glob = args.pattern.rpartition(":")
        path = resolve_binary(lib, args.pid or -1)
        names = [n for n in _symbols(path) if fnmatch.fnmatchcase(n, glob)]
        if not names:
            raise BpfkitError(f"funccount: no function of {path} matches {glob!r}")
        if len(names) > MAX_FUNCS:
            raise BpfkitError(f"funccount: {len(names)} functions match {glob!r} (at most "
                              f"{MAX_FUNCS}): narrow the pattern")
        return path, names

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        path, names = self._targets(args)
        self._names = names
        kw: dict[str, Any] = {"binary": path}
        if args.pid:
            kw["pid"] = args.pid
        return [Probe("uprobe_count", uid=f"f{i}", symbol=n, options={"cookie": i},
                      optional=len(names) > 1, **kw) for i, n in enumerate(names)]

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        cmap = m.map("counts")
        rows: list[dict[str, Any]] = []
        for k, v in list(cmap.items()):
            n = sum(int(x) for x in v) if isinstance(v, (list, tuple)) else int(v)
            i = int(k)
            if n and i < len(self._names):
                rows.append({"func": self._names[i], "count": n})
                cmap[k] = [0] * len(v) if isinstance(v, (list, tuple)) else 0
        rows.sort(key=lambda r: -r["count"])
        self.print_table(rows, [Column("FUNC", "<36", "func"), Column("COUNT", ">8", "count")],
                         args, stamp=bool(args.time))

    _names: list[str] = []


TOOL = FuncCount()
