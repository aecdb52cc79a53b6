"""``bpfkit prog|map|link|btf``: list, show and dump the kernel's BPF objects (like
bpftool), and ``btf dump``: BTF as a C header (``vmlinux.h``) or a raw listing."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import sys
from typing import Any

from ..errors import UsageError
from ._output import EXIT_ERROR, _jsonable, _tname, emit_json, table

# ----------------------------------------------------------------------------- prog


def cmd_prog_list(a: argparse.Namespace) -> int:
    from .. import introspect
    progs = introspect.programs()
    for p in progs:  # the kernel keeps 15 characters of a name; BTF has all of it
        p.name = introspect.full_name(p)
    if a.json:
        emit_json(progs)
        return 0
    table([(p.id, _tname(p.type), p.name, p.tag, p.xlated_size, p.jited_size, p.run_cnt,
            ",".join(map(str, p.map_ids))) for p in progs],
          ["ID", "TYPE", "NAME", "TAG", "XLATED", "JITED", "RUNS", "MAPS"])
    return 0



def _object_id(ref: str, what: str) -> int:
    """A kernel object id typed by the user (ids are 32-bit)."""
    n = int(ref)
    if not 0 < n <= 0xFFFFFFFF:
        raise UsageError(f"{what} id {ref[:24]} is out of range (ids are 1 to 4294967295)")
    return n


def _open_prog(ref: str):
    from ..program import Program
    if ref.isdigit():
        return Program.from_id(_object_id(ref, "program"))
    return Program.from_pin(ref)


def cmd_prog_show(a: argparse.Namespace) -> int:
    from .. import introspect
    with _open_prog(a.ref) as p:
        info = p.info()
        info.name = introspect.full_name(info, p)
    if a.json:
        emit_json(info)
    else:
        for f in dataclasses.fields(info):
            v = getattr(info, f.name)
            print(f"{f.name:>18}: {_tname(v) if isinstance(v, enum.Enum) else v}")
    return 0


def cmd_prog_dump(a: argparse.Namespace) -> int:
    """Translated instructions like ``bpftool prog dump xlated``, plus helper ids and the
    source lines and function prototypes from the program's BTF."""
    from .. import asm, introspect
    with _open_prog(a.ref) as p:
        insns = asm.decode(p.xlated())
        src = introspect.program_source(p)
    calls = introspect.call_names(insns)
    funcs = {off: proto for off, _n, proto in (src.funcs if src else [])}
    lines: dict[int, introspect.SourceLine] = {}
    for sl in (src.lines if src else []):
        lines.setdefault(sl.insn_off, sl)
    rows: list[dict[str, Any]] = []
    for idx, (ins, slot) in enumerate(zip(insns, asm.slot_offsets(insns), strict=True)):
        text = asm.format_instruction(ins)
        if idx in calls:
            text = f"({ins.opcode:02x}) call {calls[idx]}"
        row: dict[str, Any] = {"pc": slot}
        if slot in funcs:
            row["proto"] = funcs[slot]
        li = lines.get(slot)
        if li is not None:
            row["src"] = li.text
            row["file"], row["line"], row["col"] = li.file, li.line, li.col
        row["disasm"] = text
        rows.append(row)
    if a.json:
        emit_json(rows)
        return 0
    for r in rows:
        if "proto" in r:
            print(f"{r['proto']}:")
        if "src" in r:
            where = f" [{os.path.basename(r['file'])}:{r['line']}]" if a.linum else ""
            print(f"; {r['src']}{where}")
        print(f"{r['pc']: 4d}: {r['disasm']}")
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


def _open_map(ref: str):
    from ..maps import Map
    if ref.isdigit():
        return Map.from_id(_object_id(ref, "map"))
    return Map.from_pin(ref)


def _parse_bytes(text: str, size: int, what: str = "key") -> bytes:
    """A key/value on the command line: an integer, ``hex:`` bytes, or space-separated
    bytes; anything that does not fit the map's ``size`` is a UsageError (exit 2)."""
    text = text.strip()
    if " " in text:
        try:
            vals = [int(x, 0) for x in text.split()]
        except ValueError:
            raise UsageError(f"{what} {text[:40]!r}: want bytes such as '1 0 0 0' or "
                             "'0x01 0x00'") from None
        if any(not 0 <= v <= 255 for v in vals):
            raise UsageError(f"{what} {text[:40]!r}: each byte must be 0 to 255")
        raw = bytes(vals)
    elif text.startswith("hex:"):
        try:
            raw = bytes.fromhex(text[4:])
        except ValueError:
            raise UsageError(f"{what} {text[:40]!r}: not hex bytes") from None
    else:
        try:
            n = int(text, 0)
        except ValueError:
            raise UsageError(f"{what} {text[:40]!r}: want an integer (0x hex allowed), "
                             "'hex:0a0b...' or space-separated bytes") from None
        lo, hi = -(1 << (8 * size - 1)), (1 << (8 * size)) - 1
        if not lo <= n <= hi:
            raise UsageError(f"{what} {text[:40]} does not fit in the map's {size}-byte "
                             f"{what} ({lo} to {hi})")
        return n.to_bytes(size, sys.byteorder, signed=n < 0)
    if len(raw) != size:
        raise UsageError(f"{what} {text[:40]!r}: {len(raw)} bytes given, the map's {what} "
                         f"is {size} bytes")
    return raw


def _hex_list(b: bytes) -> list[str]:
    return [f"0x{x:02x}" for x in b]


def _map_entry(m: Any, k: bytes, v: bytes | list[bytes], typed: bool
               ) -> tuple[dict[str, Any], tuple[Any, Any] | None]:
    """One entry shaped like ``bpftool -j map dump`` (raw ``key``/``value`` byte lists and,
    when the map has BTF, ``formatted``), and the decoded (key, value) for text output."""
    from ..show import plain
    out: dict[str, Any] = {"key": _hex_list(k)}
    if isinstance(v, list):  # per-CPU
        out["values"] = [{"cpu": i, "value": _hex_list(x)} for i, x in enumerate(v)]
        if not typed:
            return out, None
        key, vals = m.key_codec.decode(k), [m.value_codec.decode(x) for x in v]
        out["formatted"] = {"key": plain(key), "values": [
            {"cpu": i, "value": plain(x)} for i, x in enumerate(vals)]}
        return out, (key, vals)
    out["value"] = _hex_list(v)
    if not typed:
        return out, None
    key, val = m.key_codec.decode(k), m.value_codec.decode(v)
    out["formatted"] = {"key": plain(key), "value": plain(val)}
    return out, (key, val)


def _print_entry(e: dict[str, Any], decoded: tuple[Any, Any] | None) -> None:
    from ..show import text
    if decoded is None:
        key = " ".join(x[2:] for x in e["key"])
        if "values" in e:
            vals = "; ".join(f"cpu{c['cpu']}: " + " ".join(x[2:] for x in c["value"])
                             for c in e["values"])
            print(f"key: {key}  values: {vals}")
        else:
            print(f"key: {key}  value: {' '.join(x[2:] for x in e['value'])}")
        return
    k, v = decoded
    if "values" in e:
        print(f"{text(k, 64)}: " + ", ".join(f"cpu{i}={text(x, 64)}" for i, x in enumerate(v)))
    else:
        print(f"{text(k, 64)}: {text(v, 64)}")


def cmd_map_dump(a: argparse.Namespace) -> int:
    """Every entry, decoded through the BTF the kernel holds for the map (as bpftool)."""
    from .. import introspect
    with _open_map(a.ref) as m:
        typed = introspect.type_map(m) is not None
        entries = [_map_entry(m, k, v, typed) for k, v in m.items_raw()]
    if a.json:
        emit_json([e for e, _ in entries])
    else:
        for e, d in entries:
            _print_entry(e, d)
        print(f"({len(entries)} entries)")
    return 0


def cmd_map_show(a: argparse.Namespace) -> int:
    from .. import introspect
    with _open_map(a.ref) as m:
        info = m.info()
        types = introspect.type_map(m)
    extra = {}
    if types is not None:
        extra = {"key_type": types.name(types.key_type_id),
                 "value_type": types.name(types.value_type_id)}
    if a.json:
        emit_json({**_jsonable(info), **extra})
    else:
        for f in dataclasses.fields(info):
            v = getattr(info, f.name)
            print(f"{f.name:>18}: {_tname(v) if isinstance(v, enum.Enum) else v}")
        for k, v in extra.items():
            print(f"{k:>18}: {v}")
    return 0


def cmd_map_lookup(a: argparse.Namespace) -> int:
    from .. import introspect
    with _open_map(a.ref) as m:
        typed = introspect.type_map(m) is not None
        key = _parse_bytes(a.key, m.key_size)
        v = m.lookup_raw(key)
        if v is None:
            print(f"bpfkit: map {a.ref}: no such key {a.key}", file=sys.stderr)
            return EXIT_ERROR
        e, d = _map_entry(m, key, v, typed)
    emit_json(e) if a.json else _print_entry(e, d)
    return 0


def cmd_map_update(a: argparse.Namespace) -> int:
    with _open_map(a.ref) as m:
        m.update(_parse_bytes(a.key, m.key_size),
                 _parse_bytes(a.value, m.value_size, "value"))
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
    with (Link.from_id(_object_id(a.ref, "link")) if a.ref.isdigit() else Link.from_pin(a.ref)) as li:
        info = li.info()
    emit_json(info) if a.json else print(info)
    return 0


def cmd_link_detach(a: argparse.Namespace) -> int:
    from ..link import Link
    li = Link.from_id(_object_id(a.ref, "link")) if a.ref.isdigit() else Link.from_pin(a.ref)
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
            with open(a.output, "w", encoding="utf-8", errors="backslashreplace") as f:
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
        with open(a.output, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
