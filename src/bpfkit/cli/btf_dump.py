"""Extra ``bpfkit`` subcommands, registered through :data:`bpfkit.cli._EXTENSIONS`.

``bpfkit btf dump [FILE] [--format c|raw] [--base FILE] [-o OUT]``: write a BTF file (raw
BTF such as ``/sys/kernel/btf/vmlinux``, or an ELF object's ``.BTF``) as a C header
(``vmlinux.h``) or as a bpftool-style listing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import inspect as cli

DEFAULT_BTF = "/sys/kernel/btf/vmlinux"


def cmd_btf_dump(a: argparse.Namespace) -> int:
    from ..btf import Spec
    from ..btf.cdump import _raw_lines, dump_c, dump_raw

    base = Spec.load_file(a.base) if a.base else None
    spec = Spec.load_file(a.file, base=base)
    if a.json:
        rows = [{"id": t, "kind": spec.type(t).kind_name, "name": spec.type(t).name,
                 "text": _raw_lines(spec, spec.type(t))} for t in spec.own_ids()]
        if a.output:
            with open(a.output, "w") as f:
                sys.stdout, old = f, sys.stdout
                try:
                    cli.emit_json(rows)
                finally:
                    sys.stdout = old
        else:
            cli.emit_json(rows)
        return 0
    text = dump_c(spec, types=a.type or None) if a.format == "c" else dump_raw(spec)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    btf = sub.choices.get("btf")
    if btf is None:
        return
    actions = [x for x in btf._actions if isinstance(x, argparse._SubParsersAction)]
    if not actions or "dump" in actions[0].choices:
        return
    d = add(actions[0], "dump", cmd_btf_dump,
            "write BTF as a C header (vmlinux.h) or a raw listing")
    d.add_argument("file", nargs="?", default=DEFAULT_BTF,
                   help=f"raw BTF or an ELF object with .BTF (default {DEFAULT_BTF})")
    d.add_argument("--format", choices=("c", "raw"), default="c", help="output format")
    d.add_argument("--base", help="base BTF for split BTF (e.g. /sys/kernel/btf/vmlinux)")
    d.add_argument("--type", action="append", metavar="NAME",
                   help="with --format c: only this type and what it needs (repeatable)")
    d.add_argument("-o", "--output", help="write to this file instead of stdout")


if _register not in cli._EXTENSIONS:
    cli._EXTENSIONS.append(_register)
