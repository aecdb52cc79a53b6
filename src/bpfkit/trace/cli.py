"""``bpfkit trace``: the command-line glue, kept in one function pair so it moves easily."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

HELP = "run a bpftrace program, compiled by bpfkit (no clang)"


def cmd_trace(a: argparse.Namespace) -> int:
    from .runtime import Tracer, list_probes
    if a.list is not None:
        list_probes(a.list or "*")
        return 0
    args = list(a.args)
    if a.expr is not None:
        source, name = a.expr, "stdin"
    else:
        if not args:
            print("bpfkit trace: give a program with -e 'PROGRAM' or a FILE.bt", file=sys.stderr)
            return 2
        name = args.pop(0)
        with open(name) as f:
            source = f.read()
    fmt = "json" if a.json or a.format == "json" else "text"
    return Tracer(source, name=name, params=args, pid=a.pid or 0, command=a.cmd,
                  output=fmt).run(duration=a.duration)


def _arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument("-e", dest="expr", metavar="PROGRAM", help="the program text")
    t.add_argument("args", nargs="*", help="FILE.bt (without -e), then $1, $2... parameters")
    t.add_argument("-c", dest="cmd", metavar="CMD",
                   help="run CMD (held until the probes are attached; its pid is cpid); "
                        "stop when it exits")
    t.add_argument("-p", dest="pid", type=int, help="uprobes/profile only in this process")
    t.add_argument("-f", dest="format", choices=("text", "json"), default="text")
    t.add_argument("-l", dest="list", nargs="?", const="*", metavar="PATTERN",
                   help="list probes matching PATTERN")
    t.add_argument("--duration", type=float, default=0.0, help="stop after S seconds")
    t.set_defaults(func=cmd_trace)


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the ``trace`` subcommand to bpfkit's parser (for ``bpfkit --help``)."""
    if "trace" in sub.choices:
        return
    _arguments(add(sub, "trace", cmd_trace, HELP))


def standalone_parser() -> argparse.ArgumentParser:
    """``bpfkit trace``'s parser alone: the command's start-up builds nothing else."""
    p = argparse.ArgumentParser(prog="bpfkit trace", description=HELP)
    p.add_argument("--json", action="store_true", help="the same as -f json")
    _arguments(p)
    return p


def _install() -> None:
    from .. import cli
    if register not in cli._EXTENSIONS:
        cli._EXTENSIONS.append(register)


_install()
