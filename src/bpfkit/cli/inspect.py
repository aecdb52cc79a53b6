"""The ``bpfkit`` command: inspect the kernel's BPF objects, build, load and run programs.

Every subcommand prints one-sentence errors with a hint and exits non-zero, and
``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..cleanup import interrupt_on_term
from ..errors import BpfkitError, PermissionDenied

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PERM = 0, 1, 2, 3

Handler = Callable[[argparse.Namespace], int]


def _jsonable(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, enum.Enum):
        return v.name.lower()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    return v


def emit_json(v: Any) -> None:
    json.dump(_jsonable(v), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _tname(t: Any) -> str:
    return t.name.lower() if isinstance(t, enum.Enum) else str(t)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cols = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    for r in cols:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())


# ----------------------------------------------------------------------------- prog


def cmd_prog_list(a: argparse.Namespace) -> int:
    from .. import introspect
    progs = introspect.programs()
    if a.json:
        emit_json(progs)
        return 0
    table([(p.id, _tname(p.type), p.name, p.tag, p.xlated_size, p.jited_size, p.run_cnt,
            ",".join(map(str, p.map_ids))) for p in progs],
          ["ID", "TYPE", "NAME", "TAG", "XLATED", "JITED", "RUNS", "MAPS"])
    return 0


def _open_prog(ref: str):  # type: ignore[no-untyped-def]
    from ..program import Program
    if ref.isdigit():
        return Program.from_id(int(ref))
    return Program.from_pin(ref)


def cmd_prog_show(a: argparse.Namespace) -> int:
    with _open_prog(a.ref) as p:
        info = p.info()
    if a.json:
        emit_json(info)
    else:
        for f in dataclasses.fields(info):
            v = getattr(info, f.name)
            print(f"{f.name:>18}: {_tname(v) if isinstance(v, enum.Enum) else v}")
    return 0


def cmd_prog_dump(a: argparse.Namespace) -> int:
    from .. import asm
    with _open_prog(a.ref) as p:
        insns = asm.decode(p.xlated())
    if a.json:
        emit_json([{"opcode": i.opcode, "dst": i.dst, "src": i.src, "off": i.off, "imm": i.imm,
                    "text": str(i)} for i in insns])
    else:
        print(asm.disassemble(insns))
    return 0


# ----------------------------------------------------------------------------- map


def cmd_map_list(a: argparse.Namespace) -> int:
    from .. import introspect
    maps = introspect.maps()
    if a.json:
        emit_json(maps)
        return 0
    table([(m.id, _tname(m.type), m.name, m.key_size, m.value_size, m.max_entries, hex(m.flags))
           for m in maps], ["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX", "FLAGS"])
    return 0


def _open_map(ref: str):  # type: ignore[no-untyped-def]
    from ..maps import Map
    if ref.isdigit():
        return Map.from_id(int(ref))
    return Map.from_pin(ref)


def _parse_bytes(text: str, size: int) -> bytes:
    """A key/value on the command line: an integer, 0x-hex bytes, or space-separated bytes."""
    text = text.strip()
    if " " in text:
        return bytes(int(x, 0) for x in text.split())
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    return int(text, 0).to_bytes(size, sys.byteorder, signed=text.startswith("-"))


def _fmt(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [_fmt(x) for x in v]
    return v


def cmd_map_dump(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        items = list(m.items())
    if a.json:
        emit_json([{"key": _fmt(k), "value": _fmt(v)} for k, v in items])
    else:
        for k, v in items:
            print(f"{_fmt(k)}: {_fmt(v)}")
        print(f"({len(items)} entries)")
    return 0


def cmd_map_show(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        info = m.info()
    if a.json:
        emit_json(info)
    else:
        for f in dataclasses.fields(info):
            v = getattr(info, f.name)
            print(f"{f.name:>18}: {_tname(v) if isinstance(v, enum.Enum) else v}")
    return 0


def cmd_map_lookup(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        v = m.lookup(_parse_bytes(a.key, m.key_size))
    if v is None:
        print("bpfkit: no such key", file=sys.stderr)
        return EXIT_ERROR
    emit_json({"key": a.key, "value": _fmt(v)}) if a.json else print(_fmt(v))
    return 0


def cmd_map_update(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        m.update(_parse_bytes(a.key, m.key_size), _parse_bytes(a.value, m.value_size))
    return 0


def cmd_map_delete(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        if not m.delete(_parse_bytes(a.key, m.key_size)):
            print("bpfkit: no such key", file=sys.stderr)
            return EXIT_ERROR
    return 0


def cmd_map_pin(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        m.pin(a.path)
    return 0


# ----------------------------------------------------------------------------- link / btf


def cmd_link_list(a: argparse.Namespace) -> int:
    from .. import introspect
    links = introspect.links()
    if a.json:
        emit_json(links)
        return 0
    table([(li.id, _tname(li.type), li.prog_id, _tname(li.attach_type) if li.attach_type is not None
            else "", " ".join(f"{k}={v}" for k, v in li.target.items())) for li in links],
          ["ID", "TYPE", "PROG", "ATTACH", "TARGET"])
    return 0


def cmd_link_show(a: argparse.Namespace) -> int:
    from ..link import Link
    with (Link.from_id(int(a.ref)) if a.ref.isdigit() else Link.from_pin(a.ref)) as li:
        info = li.info()
    emit_json(info) if a.json else print(info)
    return 0


def cmd_link_detach(a: argparse.Namespace) -> int:
    from ..link import Link
    li = Link.from_id(int(a.ref)) if a.ref.isdigit() else Link.from_pin(a.ref)
    li.detach()
    return 0


def cmd_btf_list(a: argparse.Namespace) -> int:
    from .. import introspect
    btfs = introspect.btfs()
    if a.json:
        emit_json(btfs)
        return 0
    table([(b.id, b.name, b.size, "kernel" if b.kernel_btf else "") for b in btfs],
          ["ID", "NAME", "SIZE", ""])
    return 0


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
    if a.json:
        emit_json({"stale": len(stale), "removed": [r.kind for r in removed]})
    else:
        print(f"removed {len(removed)} attachment(s) left by bpfkit processes that are gone "
              f"({len(stale)} stale record(s) found)")
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


# ----------------------------------------------------------------------------- parser


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
    tp = add(sub, "top", cmd_top, "live view of loaded BPF programs: run counts, events/s, "
             "average run time and CPU share (BPF stats are switched on while it runs)")
    tp.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between samples")
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
    rn.add_argument("--record", help="BTF type of ring/perf buffer records (default: inferred)")
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


# Other modules (tools, export, run...) register subcommands here.
_EXTENSIONS: list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]] = []


def _version() -> str:
    from .. import __version__
    return __version__


def _load_extensions() -> None:
    import importlib
    for mod in ("bpfkit.cli.btf_dump",
                "bpfkit.export.cli",):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


def _tool_parser(name: str) -> tuple[argparse.ArgumentParser, Any]:
    from ..tools import TOOL_MODULES, load_tool
    tool = load_tool(name)
    p = argparse.ArgumentParser(prog=f"bpfkit {name}", description=TOOL_MODULES[name][1])
    tool.build_parser(p)
    p.set_defaults(func=tool.run)
    return p, tool


def main(argv: Sequence[str] | None = None) -> int:
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
        hint = "" if os.geteuid() == 0 else " (bpfkit needs root or CAP_BPF/CAP_PERFMON)"
        print(f"bpfkit: {e}{hint}", file=sys.stderr)
        return EXIT_PERM
    except BpfkitError as e:
        print(f"bpfkit: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"bpfkit: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
