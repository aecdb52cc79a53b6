#!/usr/bin/env python3
"""Generate ``src/bpfkit/_consts.py`` from kernel BTF and the uapi ``linux/bpf.h``.

The kernel's BTF is the authority for the big uapi enums (commands, map/program/attach/
link types, helper ids): it describes the running kernel, which is usually newer than
the installed headers.  Flags that are plain ``#define``s (program load flags, attach
flags...) have no BTF, so they come from the header.  Names the existing file already
has but neither source knows (e.g. flags newer than the installed header) are kept,
so regenerating never removes a name other modules import.

    python tools/gen_consts.py [BTF-FILE] [--header /usr/include/linux/bpf.h] [-o OUT]
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bpfkit.btf import EnumBase, Spec  # noqa: E402

DEFAULT_OUT = ROOT / "src" / "bpfkit" / "_consts.py"
DEFAULT_HEADER = "/usr/include/linux/bpf.h"

# (class name, C enum name, prefix to strip, docstring)
ENUMS: list[tuple[str, str, str, str]] = [
    ("Cmd", "bpf_cmd", "BPF_", "bpf(2) commands (enum bpf_cmd)."),
    ("MapType", "bpf_map_type", "BPF_MAP_TYPE_", "Map types (enum bpf_map_type)."),
    ("ProgramType", "bpf_prog_type", "BPF_PROG_TYPE_", "Program types (enum bpf_prog_type)."),
    ("AttachType", "bpf_attach_type", "BPF_", "Attach types (enum bpf_attach_type)."),
    ("LinkType", "bpf_link_type", "BPF_LINK_TYPE_", "Link types (enum bpf_link_type)."),
    ("HelperId", "bpf_func_id", "BPF_FUNC_", "Helper function ids (enum bpf_func_id)."),
    ("StatsType", "bpf_stats_type", "BPF_STATS_", "BPF_ENABLE_STATS types (enum bpf_stats_type)."),
]

# IntFlag groups: (class name, prefix(es) to strip, docstring, member C names).  The first
# member also finds the group's anonymous enum in BTF, whose other members are added.
FLAGS: list[tuple[str, str | tuple[str, ...], str, list[str]]] = [
    ("UpdateFlags", ("BPF_F_", "BPF_"), "Flags of BPF_MAP_UPDATE_ELEM / lookup (BPF_ANY...).",
     ["BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK"]),
    ("MapFlags", "BPF_F_", "BPF_MAP_CREATE map_flags.",
     ["BPF_F_NO_PREALLOC", "BPF_F_NO_COMMON_LRU", "BPF_F_NUMA_NODE", "BPF_F_RDONLY",
      "BPF_F_WRONLY", "BPF_F_STACK_BUILD_ID", "BPF_F_ZERO_SEED", "BPF_F_RDONLY_PROG",
      "BPF_F_WRONLY_PROG", "BPF_F_CLONE", "BPF_F_MMAPABLE", "BPF_F_PRESERVE_ELEMS",
      "BPF_F_INNER_MAP", "BPF_F_LINK", "BPF_F_PATH_FD", "BPF_F_VTYPE_BTF_OBJ_FD",
      "BPF_F_TOKEN_FD", "BPF_F_SEGV_ON_FAULT", "BPF_F_NO_USER_CONV"]),
    ("ProgLoadFlags", "BPF_F_", "BPF_PROG_LOAD prog_flags.",
     ["BPF_F_STRICT_ALIGNMENT", "BPF_F_ANY_ALIGNMENT", "BPF_F_TEST_RND_HI32",
      "BPF_F_TEST_STATE_FREQ", "BPF_F_SLEEPABLE", "BPF_F_XDP_HAS_FRAGS",
      "BPF_F_XDP_DEV_BOUND_ONLY", "BPF_F_TEST_REG_INVARIANTS"]),
    ("AttachFlags", "BPF_F_", "BPF_PROG_ATTACH / BPF_LINK_CREATE / query flags.",
     ["BPF_F_ALLOW_OVERRIDE", "BPF_F_ALLOW_MULTI", "BPF_F_REPLACE", "BPF_F_BEFORE",
      "BPF_F_AFTER", "BPF_F_ID", "BPF_F_LINK"]),
    ("TestRunFlags", "BPF_F_", "BPF_PROG_TEST_RUN flags.",
     ["BPF_F_TEST_RUN_ON_CPU", "BPF_F_TEST_XDP_LIVE_FRAMES",
      "BPF_F_TEST_SKB_CHECKSUM_COMPLETE"]),
]

# Module-level ints: every enumerator/define with one of these prefixes (or names).
INT_PREFIXES = ("BPF_F_", "BPF_PSEUDO_")
INT_NAMES = {"BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_OBJ_NAME_LEN", "BPF_TAG_SIZE",
             "BPF_BUILD_ID_SIZE"}


# ----------------------------------------------------------------------------- helpers
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
            ast.LShift, ast.RShift, ast.BitOr, ast.BitAnd, ast.Add, ast.Sub, ast.Mult,
            ast.USub, ast.Invert)


def c_int_expr(text: str, known: dict[str, int]) -> int | None:
    """Evaluate a simple C integer expression (``(1U << 3)``, ``0x10``, ``A | B``), or None."""
    text = text.split("/*")[0].split("//")[0].strip()
    if not text:
        return None
    text = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", text)
    text = re.sub(r"\(\s*__u(8|16|32|64)\s*\)", "", text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            return None
        if isinstance(node, ast.Name) and node.id not in known:
            return None
        if isinstance(node, ast.Constant) and not isinstance(node.value, int):
            return None
    try:
        value = eval(compile(tree, "<c-expr>", "eval"), {"__builtins__": {}}, dict(known))  # noqa: S307
    except Exception:
        return None
    return value if isinstance(value, int) else None


@dataclass
class HeaderInfo:
    defines: dict[str, int] = field(default_factory=dict)
    enums: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # named enums
    anon: list[list[tuple[str, int]]] = field(default_factory=list)         # anonymous ones


def parse_header(path: str) -> HeaderInfo:
    """Collect ``#define NAME <int>`` and enum blocks from a uapi header."""
    info = HeaderInfo()
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        print(f"gen_consts: cannot read {path}: {e.strerror}; flags come from BTF only",
              file=sys.stderr)
        return info
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    known: dict[str, int] = {}
    for m in re.finditer(r"\benum\s+(\w+)?\s*\{(.*?)\}\s*;", text, flags=re.S):
        name, body = m.group(1), m.group(2)
        values: list[tuple[str, int]] = []
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            ident, _, expr = item.partition("=")
            ident = ident.strip()
            if not re.fullmatch(r"[A-Za-z_]\w*", ident):
                continue
            if expr.strip():
                v = c_int_expr(expr, known)
                if v is None:
                    continue
                nxt = v
            values.append((ident, nxt))
            known[ident] = nxt
            nxt += 1
        if name:
            info.enums[name] = values
        else:
            info.anon.append(values)
    for m in re.finditer(r"^\s*#\s*define\s+([A-Z_][A-Z0-9_]*)\s+(.+?)\s*$", text, flags=re.M):
        v = c_int_expr(m.group(2), known)
        if v is not None:
            info.defines[m.group(1)] = v
            known[m.group(1)] = v
    return info


def btf_enums(spec: Spec) -> tuple[dict[str, list[tuple[str, int]]], list[list[tuple[str, int]]]]:
    """Named and anonymous enums of a BTF spec (only enum types are decoded)."""
    named: dict[str, list[tuple[str, int]]] = {}
    anon: list[list[tuple[str, int]]] = []
    for tid in range(1, len(spec)):
        if spec.kind_of(tid) not in (6, 19):
            continue
        t = spec[tid]
        assert isinstance(t, EnumBase)
        values = [(v.name, v.value) for v in t.values]
        if t.name:
            named.setdefault(t.name, values)
        else:
            anon.append(values)
    return named, anon


def old_names(path: Path) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Class members and module-level ints of an existing _consts.py (read, not imported)."""
    classes: dict[str, dict[str, int]] = {}
    ints: dict[str, int] = {}
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return classes, ints

    def value(node: ast.expr, scope: dict[str, int]) -> int | None:
        return c_int_expr(ast.unparse(node), scope)

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members: dict[str, int] = {}
            for item in node.body:
                if (isinstance(item, ast.Assign) and len(item.targets) == 1
                        and isinstance(item.targets[0], ast.Name)):
                    v = value(item.value, {**ints, **members})
                    if v is not None:
                        members[item.targets[0].id] = v
            classes[node.name] = members
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name)):
            v = value(node.value, ints)
            if v is not None:
                ints[node.targets[0].id] = v
    return classes, ints


def fmt_value(v: int, flag: bool = True) -> str:
    """Flags read best as shifts, masks as hex, everything else in decimal."""
    if flag and v >= 2 and v & (v - 1) == 0:
        return f"1 << {v.bit_length() - 1}"
    if flag and v > 0xFFFF:
        return hex(v)
    return str(v)


# ----------------------------------------------------------------------------- main
def generate(spec: Spec, header: HeaderInfo, old: tuple[dict[str, dict[str, int]], dict[str, int]],
             source: str, command: str, header_path: str = DEFAULT_HEADER) -> str:
    """The text of _consts.py."""
    named, anon = btf_enums(spec)
    old_classes, old_ints = old
    out: list[str] = [
        '"""Kernel constants for bpfkit: GENERATED by tools/gen_consts.py, do not edit.',
        "",
        f"Source: {source};",
        f"flags that have no BTF enum: {header_path}.",
        f"Command: {command}",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum, IntFlag",
        "",
    ]
    kept: list[str] = []

    for cls, cname, prefix, doc in ENUMS:
        values = named.get(cname) or header.enums.get(cname) or []
        members: dict[str, int] = {}
        for name, v in values:
            if name.startswith("__") or not name.startswith(prefix):
                continue
            short = name[len(prefix):]
            if short.isidentifier() and short not in members:
                members[short] = v
        for short, v in old_classes.get(cls, {}).items():
            if short not in members:
                members[short] = v
                kept.append(f"{cls}.{short}")
        if not members:
            raise SystemExit(f"gen_consts: enum {cname} is neither in the BTF nor the header")
        out += ["", f"class {cls}(IntEnum):", f'    """{doc}"""', ""]
        out += [f"    {k} = {v}" for k, v in members.items()]
        out.append("")

    # every enumerator and define, for flags and module-level ints
    scalars: dict[str, int] = {}
    groups_btf = anon + list(named.values())
    for values in groups_btf:
        for name, v in values:
            scalars.setdefault(name, v)
    for name, v in header.defines.items():
        scalars.setdefault(name, v)
    for values in header.anon:
        for name, v in values:
            scalars.setdefault(name, v)

    def strip(name: str, prefixes: str | tuple[str, ...]) -> str | None:
        for p in (prefixes,) if isinstance(prefixes, str) else prefixes:
            if name.startswith(p):
                return name[len(p):]
        return None

    for cls, prefixes, doc, names in FLAGS:
        members = {}
        for group in anon:  # take the whole BTF anonymous enum the first name lives in
            if any(n == names[0] for n, _ in group):
                for n, v in group:
                    fshort = strip(n, prefixes)
                    if fshort and v >= 0:
                        members.setdefault(fshort, v)
        for n in names:
            fshort = strip(n, prefixes)
            if fshort is None:
                continue
            if n in scalars:
                members.setdefault(fshort, scalars[n])
            elif n in old_ints:
                members.setdefault(fshort, old_ints[n])
                kept.append(n)
        for fshort, v in old_classes.get(cls, {}).items():
            if fshort not in members:
                members[fshort] = v
                kept.append(f"{cls}.{fshort}")
        out += ["", f"class {cls}(IntFlag):", f'    """{doc}"""', ""]
        out += [f"    {k} = {fmt_value(v)}" for k, v in members.items()]
        out.append("")

    ints: dict[str, int] = {}
    for name, v in scalars.items():
        if name.startswith(INT_PREFIXES) or name in INT_NAMES:
            ints[name] = v
    for name, v in old_ints.items():
        if name not in ints:
            ints[name] = v
            kept.append(name)
    out += ["", "# --- module-level constants (enumerators and #defines of the uapi header)"]
    out += [f"{k} = {fmt_value(v, k.startswith('BPF_F_'))}" for k, v in sorted(ints.items())]
    if kept:
        out += ["", "# Kept from the previous _consts.py (in neither the BTF nor the header):",
                "# " + ", ".join(sorted(set(kept)))]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("btf", nargs="?", help="BTF file (raw or ELF); default: the running kernel")
    ap.add_argument("--header", default=DEFAULT_HEADER, help="uapi bpf.h for #define flags")
    ap.add_argument("-o", "--output", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)

    if args.btf:
        spec = Spec.load_file(args.btf)
        source = f"BTF file {args.btf}"
    else:
        spec = Spec.kernel()
        source = f"kernel BTF /sys/kernel/btf/vmlinux of Linux {platform.release()}"
    cmd = "python tools/gen_consts.py" + (f" {args.btf}" if args.btf else "")
    if args.header != DEFAULT_HEADER:
        cmd += f" --header {args.header}"
    out = Path(args.output)
    text = generate(spec, parse_header(args.header), old_names(out), source, cmd, args.header)
    tmp = out.with_suffix(".py.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(f"wrote {out} ({text.count(chr(10))} lines) from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
