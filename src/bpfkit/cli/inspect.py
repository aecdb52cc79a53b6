"""``bpfkit prog|map|link|btf``: list, show and dump the kernel's BPF objects (like
bpftool), and ``btf dump``: BTF as a C header (``vmlinux.h``) or a raw listing."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import sys
from typing import Any

from ._output import EXIT_ERROR, _tname, emit_json, table

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








# ----------------------------------------------------------------------------- parser










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
                    emit_json(rows)
                finally:
                    sys.stdout = old
        else:
            emit_json(rows)
        return 0
    text = dump_c(spec, types=a.type or None) if a.format == "c" else dump_raw(spec)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
