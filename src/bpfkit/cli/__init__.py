"""The ``bpfkit`` command: ``main`` builds the parser and dispatches to one module per
command group: :mod:`.inspect` (prog/map/link/btf), :mod:`.feature`, :mod:`.top`, and the
``run``/``build``/``trace-pipe``/``cleanup`` commands below.  Every subcommand prints
one-sentence errors with a hint and exits non-zero (1 error, 2 usage, 3 missing privilege).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..cleanup import interrupt_on_term
from ..errors import BpfkitError, PermissionDenied, UsageError
from ._output import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PERM,
    EXIT_USAGE,
    Handler,
    emit_json,
    table,
)
from .inspect import (
    DEFAULT_BTF,
    cmd_btf_dump,
    cmd_btf_list,
    cmd_link_detach,
    cmd_link_list,
    cmd_link_show,
    cmd_map_delete,
    cmd_map_dump,
    cmd_map_list,
    cmd_map_lookup,
    cmd_map_pin,
    cmd_map_show,
    cmd_map_update,
    cmd_prog_dump,
    cmd_prog_list,
    cmd_prog_show,
)

__all__ = ["main", "build_parser", "emit_json", "table", "EXIT_OK", "EXIT_ERROR",
           "EXIT_USAGE", "EXIT_PERM"]



EXIT_PIPE = 128 + 13  # what a shell reports for a command killed by SIGPIPE


def _safe_stdio() -> None:
    """Names from BTF, ELF and the kernel are bytes decoded with surrogateescape: print them
    escaped rather than die with UnicodeEncodeError on a non-UTF-8 name or an ASCII locale."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that is closed or not a text file
                pass


def _reader_gone() -> int:
    """The reader of our stdout went away (``bpfkit ... | head``): stop quietly.  stdout is
    pointed at /dev/null so that flushing it at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def _seconds(text: str) -> float:
    """An interval typed by the user: a positive number of seconds."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < v <= 1e9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return v


def cmd_top(a: argparse.Namespace) -> int:
    from . import top
    return top.run(interval=a.interval, once=a.once, sort=a.sort, as_json=a.json, count=a.count)


def cmd_run(a: argparse.Namespace) -> int:
    from ..run import main_args
    return main_args(a)


def cmd_trace_pipe(a: argparse.Namespace) -> int:
    from ..readers.tracepipe import TracePipe
    end = time.monotonic() + a.duration if a.duration else None
    with TracePipe(pid=a.pid) as tp:
        while end is None or time.monotonic() < end:
            for line in tp.read(timeout=0.2):
                if a.json:
                    emit_json({"task": line.task, "pid": line.pid, "cpu": line.cpu,
                               "timestamp": line.timestamp, "message": line.message})
                else:
                    print(f"{line.task}-{line.pid} [{line.cpu:03d}] {line.timestamp:.6f}: "
                          f"{line.message}", flush=True)
    return 0


def cmd_cleanup(a: argparse.Namespace) -> int:
    from .. import cleanup
    stale = cleanup.stale()  # cleanup_stale imports each record's module for its cleaner
    removed = cleanup.cleanup_stale()
    from ..host import tracefs as perf
    # tracefs events whose names say their bpfkit process is dead, record or not
    events = [e for f in ("uprobe_events", "kprobe_events")
              for e in perf.reclaim_stale_events(f)]
    left = [r for r in cleanup.stale() if r.token in {s.token for s in stale}]
    if a.json:
        emit_json({"stale": len(stale), "removed": [r.kind for r in removed],
                   "events_reclaimed": events, "left": [r.kind for r in left]})
    else:
        print(f"removed {len(removed)} attachment(s) left by bpfkit processes that are gone "
              f"({len(stale)} stale record(s) found)"
              + (f"; removed {len(events)} orphan probe event(s)" if events else ""))
        for r in left:
            print(f"kept the record of a {r.kind} attachment of pid {r.pid}: it could not be "
                  f"removed yet ({r.token})")
    return 0


def cmd_feature(a: argparse.Namespace) -> int:
    from .feature import cmd_feature as run_feature
    return run_feature(a)


def cmd_build(a: argparse.Namespace) -> int:
    from ..build import compile_bpf
    out = compile_bpf(a.source, a.output, include_dirs=a.include or (),
                      defines=a.define or ())
    if a.json:
        emit_json({"source": a.source, "object": str(out)})
    else:
        print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bpfkit", description="A pure-Python eBPF toolkit: inspect "
                                "the kernel's BPF objects, build, load, attach and run programs.")
    p.add_argument("--version", action="version", version=f"bpfkit {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(parent: Any, name: str, fn: Handler, help: str) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help)
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.set_defaults(func=fn)
        return sp

    prog = sub.add_parser("prog", help="loaded BPF programs").add_subparsers(metavar="ACTION")
    add(prog, "list", cmd_prog_list, "list loaded programs")
    add(prog, "show", cmd_prog_show, "show one program (by id or pinned path)").add_argument("ref")
    d = add(prog, "dump", cmd_prog_dump, "disassemble a program's translated instructions")
    d.add_argument("ref")
    d.add_argument("--xlated", action="store_true", help="(default) the verifier's output")
    d.add_argument("--linum", action="store_true", help="add file:line to each source line")

    mp = sub.add_parser("map", help="BPF maps").add_subparsers(metavar="ACTION")
    add(mp, "list", cmd_map_list, "list maps")
    add(mp, "show", cmd_map_show, "show one map (by id or pinned path)").add_argument("ref")
    add(mp, "dump", cmd_map_dump, "dump a map's entries").add_argument("ref")
    lk = add(mp, "lookup", cmd_map_lookup, "look a key up (int, 'hex:..' or bytes '1 2 3')")
    lk.add_argument("ref")
    lk.add_argument("key")
    up = add(mp, "update", cmd_map_update, "set key to value")
    up.add_argument("ref")
    up.add_argument("key")
    up.add_argument("value")
    de = add(mp, "delete", cmd_map_delete, "delete a key")
    de.add_argument("ref")
    de.add_argument("key")
    pn = add(mp, "pin", cmd_map_pin, "pin a map on bpffs")
    pn.add_argument("ref")
    pn.add_argument("path")

    li = sub.add_parser("link", help="BPF links").add_subparsers(metavar="ACTION")
    add(li, "list", cmd_link_list, "list links")
    add(li, "show", cmd_link_show, "show one link").add_argument("ref")
    add(li, "detach", cmd_link_detach, "detach a link (by id or pinned path)").add_argument("ref")

    bt = sub.add_parser("btf", help="BTF objects").add_subparsers(metavar="ACTION")
    add(bt, "list", cmd_btf_list, "list BTF objects")
    d = add(bt, "dump", cmd_btf_dump, "write BTF as a C header (vmlinux.h) or a raw listing")
    d.add_argument("file", nargs="?", default=DEFAULT_BTF,
                   help=f"raw BTF or an ELF object with .BTF (default {DEFAULT_BTF})")
    d.add_argument("--format", choices=("c", "raw"), default="c", help="output format")
    d.add_argument("--base", help="base BTF for split BTF (e.g. /sys/kernel/btf/vmlinux)")
    d.add_argument("--type", action="append", metavar="NAME",
                   help="with --format c: only this type and what it needs (repeatable)")
    d.add_argument("-o", "--output", help="write to this file instead of stdout")

    tp = add(sub, "top", cmd_top, "live view of loaded BPF programs: run counts, events/s, "
             "average run time and CPU share (BPF stats are switched on while it runs)")
    tp.add_argument("-i", "--interval", type=_seconds, default=1.0,
                    help="seconds between samples")
    tp.add_argument("--once", action="store_true", help="sample once and exit")
    tp.add_argument("-n", "--count", type=int, default=0, help="stop after N refreshes")
    tp.add_argument("--sort", default="cpu", choices=["cpu", "events", "avg", "id", "name",
                                                      "runs"])

    rn = add(sub, "run", cmd_run, "build (if C), load and attach a BPF object, stream its ring/perf "
             "buffers and bpf_printk output, print its maps at exit")
    rn.add_argument("source", help="prog.bpf.c or prog.bpf.o")
    rn.add_argument("--const", action="append", metavar="NAME=VALUE",
                    help="set a const volatile global before load")
    rn.add_argument("--duration", type=float, default=0.0, help="seconds to run (default: "
                    "until Ctrl-C or the command exits)")
    rn.add_argument("-p", "--pid", type=int, help="sets the object's targ_pid constant")
    rn.add_argument("--record", action="append", metavar="MAP=TYPE",
                    help="record type of a ring/perf buffer map (repeatable); a bare TYPE "
                    "applies to the maps whose records fit it (default: inferred from the "
                    "sizes the programs write, matched against BTF, else DWARF)")
    rn.add_argument("-i", "--ifname", help="interface for xdp/tc programs")
    rn.epilog = "Give a command after -- to run it while attached; bpfkit stops when it exits."
    rn.set_defaults(command=[])

    tpp = add(sub, "trace-pipe", cmd_trace_pipe, "print bpf_printk output from trace_pipe")
    tpp.add_argument("-p", "--pid", type=int)
    tpp.add_argument("--duration", type=float, default=0.0)

    add(sub, "cleanup", cmd_cleanup, "remove attachments (tc filters, XDP, tracefs probe events) "
        "left by bpfkit processes that were killed")

    ft = add(sub, "feature", cmd_feature, "what this kernel supports: program, map, attach and "
             "link types, hooks, ISA version, and the section names that use each")
    ft.add_argument("--helpers", action="append", metavar="PROGTYPE",
                    help="also list the helpers a program type can call (e.g. kprobe, xdp)")

    bd = add(sub, "build", cmd_build, "compile a BPF C file with clang (-target bpf -g -O2, "
             "arch define, include paths, a vmlinux.h generated from this kernel and cached)")
    bd.add_argument("source")
    bd.add_argument("-o", "--output", default=None)
    bd.add_argument("-I", "--include", action="append", help="include directory")
    bd.add_argument("-D", "--define", action="append", help="preprocessor define")
    from ..tools import TOOL_MODULES
    for tname, (_mod, thelp) in TOOL_MODULES.items():
        sub.add_parser(tname, help=f"[tool] {thelp}", add_help=False)
    for extra in _EXTENSIONS:
        extra(sub, add)
    return p


# The exporter and the tracer register their subcommands here: a plug-in hook.
_EXTENSIONS: list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]] = []


def _version() -> str:
    from .. import __version__
    return __version__


def _load_extensions() -> None:
    """Import the optional exporter's and the tracer's commands (they register themselves in
    ``_EXTENSIONS``); the core CLI never imports them otherwise."""
    import importlib
    importlib.import_module("bpfkit.export.cli")
    importlib.import_module("bpfkit.trace.cli")


def _tool_parser(name: str) -> tuple[argparse.ArgumentParser, Any]:
    from ..tools import TOOL_MODULES, load_tool
    tool = load_tool(name)
    p = argparse.ArgumentParser(prog=f"bpfkit {name}", description=TOOL_MODULES[name][1])
    tool.build_parser(p)
    p.set_defaults(func=tool.run)
    return p, tool


def main(argv: Sequence[str] | None = None) -> int:
    _safe_stdio()
    try:
        return _main(argv)
    except BrokenPipeError:
        return _reader_gone()


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:  # `bpfkit run prog.bpf.c [options] -- COMMAND ARGS...`
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    from ..tools import TOOL_MODULES
    if argv and argv[0] in TOOL_MODULES:
        # A tool: build only its parser, so start-up imports only what it needs.
        parser, _ = _tool_parser(argv[0])
        argv = argv[1:]
    elif argv and argv[0] == "trace":  # likewise for bpftrace programs
        from ..trace.cli import standalone_parser
        parser = standalone_parser()
        argv = argv[1:]
    else:
        _load_extensions()
        parser = build_parser()
    args = parser.parse_args(argv)
    if rest:
        if not hasattr(args, "command") or getattr(args, "command", None) is None:
            parser.error("only 'bpfkit run' takes a command after --")
        args.command = rest
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with interrupt_on_term():  # SIGTERM is Ctrl-C: detach, summarise, exit 0
            return int(args.func(args) or 0)
    except PermissionDenied as e:
        hint = "" if os.geteuid() == 0 or "CAP_" in str(e) else \
            " (bpfkit needs root or CAP_BPF/CAP_PERFMON)"
        print(f"bpfkit: {e}{hint}", file=sys.stderr)
        return EXIT_PERM
    except UsageError as e:
        print(f"bpfkit: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BpfkitError as e:
        print(f"bpfkit: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return _reader_gone()
    except OSError as e:
        print(f"bpfkit: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
