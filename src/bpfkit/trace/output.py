"""Decoding what the programs stored, and printing it the way bpftrace 0.17 does.

Text: ``@name[key]: value`` lines sorted by value, hist()/lhist() bars with bpftrace's
bucket labels (16-column label, 8-column count, 52 '@' wide), avg/stats/hist maps
followed by a blank line.  JSON (``-f json``): one object a line, ``{"type": ..., "data":
...}`` in bpftrace's shapes.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from typing import Any

from .check import format_specs
from .codegen import MapLayout
from .types import Type

Symbolizer = Callable[[str, Any, int], str]


def _i64(b: bytes, off: int, signed: bool) -> int:
    return struct.unpack_from("<q" if signed else "<Q", b, off)[0]


def decode(t: Type, b: bytes, off: int = 0) -> Any:
    """The Python value of a stored ``t`` at ``b[off:]``."""
    k = t.kind
    if k == "int":
        return _i64(b, off, t.signed)
    if k in ("ptr", "ksym", "kstack"):
        return _i64(b, off, False)
    if k == "str":
        raw = b[off:off + t.size]
        return raw.split(b"\0", 1)[0].decode(errors="replace")
    if k == "tuple":
        return tuple(decode(i, b, off + o) for i, o in zip(t.items, t.offsets(), strict=True))
    if k in ("usym", "ustack"):
        return (_i64(b, off, False), _i64(b, off + 8, False))
    if k == "inet":
        import ipaddress  # only programs that call ntop() pay for it
        af = _i64(b, off, False)
        if af == 10:
            return str(ipaddress.IPv6Address(bytes(b[off + 8:off + 24])))
        return str(ipaddress.IPv4Address(bytes(b[off + 8:off + 12])))
    return _i64(b, off, False)


class Formatter:
    """Turns decoded values into bpftrace's text; symbols come from ``symbolize``."""

    def __init__(self, symbolize: Symbolizer | None = None) -> None:
        self.symbolize = symbolize or (lambda kind, v, limit: str(v))

    def value(self, t: Type, v: Any, in_key: bool = False) -> str:
        k = t.kind
        if k == "tuple":
            return ", ".join(self.value(i, x, in_key) for i, x in zip(t.items, v, strict=True))
        if k in ("ksym", "usym", "kstack", "ustack"):
            return self.symbolize(k, v, t.params[0] if t.params else 127)
        return str(v)

    def printf(self, fmt: str, types: list[Type], values: list[Any]) -> str:
        """bpftrace's printf: C conversions with length modifiers, on 64-bit values."""
        it = iter(zip(types, values, strict=True))

        def conv(m: re.Match[str]) -> str:
            spec = m.group(1)
            if spec == "%":
                return "%%"  # bpftrace 0.17 prints '%%' as it is
            t, v = next(it)
            c = spec[-1]
            flags = re.sub(r"(hh|h|ll|l|z|j|t)(?=[a-zA-Z]$)", "", spec)
            if c == "s":
                return ("%" + flags) % self.value(t, v)
            if c == "p":
                return ("%" + flags[:-1] + "s") % f"0x{int(v) & (1 << 64) - 1:x}"
            if not isinstance(v, int):
                return ("%" + flags[:-1] + "s") % self.value(t, v)
            if c in "di":
                v = v - (1 << 64) if v >= 1 << 63 else v
            elif c in "uxXo":
                v &= (1 << 64) - 1
                if c == "u":
                    flags = flags[:-1] + "d"
            elif c == "c":
                v &= 0xFF
            return ("%" + flags) % v

        return _SPEC.sub(conv, fmt)


_SPEC = re.compile(r"%(%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[diouxXcsprfeEgG])")
assert format_specs("%d %%") == ["d"]


# --------------------------------------------------------------------------- maps


def _label(v: int) -> str:
    """bpftrace's hist bucket bound: powers of 1024 get K/M/G/T/P/E."""
    for suffix, shift in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if v >= 1 << shift and v % (1 << shift) == 0:
            return f"{v >> shift}{suffix}"
    return str(v)


Row = tuple[str, int, "int | None", "int | None"]


def hist_rows(buckets: dict[int, int], value: Type) -> list[Row]:
    """(label, count, min, max) from the lowest to the highest non-empty bucket."""
    if not buckets or not any(buckets.values()):
        return []
    lo, hi = min(i for i, c in buckets.items() if c), max(i for i, c in buckets.items() if c)
    rows: list[Row] = []
    if value.kind == "hist":
        for i in range(lo, hi + 1):
            c = buckets.get(i, 0)
            if i == 0:
                rows.append(("(..., 0)", c, None, -1))
            elif i == 1:
                rows.append(("[0]", c, 0, 0))
            elif i == 2:
                rows.append(("[1]", c, 1, 1))
            else:
                a, b = 1 << (i - 2), 1 << (i - 1)
                rows.append((f"[{_label(a)}, {_label(b)})", c, a, b - 1))
        return rows
    mn, mx, step = value.params
    n = (mx - mn) // step
    for i in range(lo, hi + 1):
        c = buckets.get(i, 0)
        if i == 0:
            rows.append((f"(..., {mn})", c, None, mn - 1))
        elif i == n + 1:
            rows.append((f"[{mx}, ...)", c, mx, None))
        else:
            a = mn + (i - 1) * step
            rows.append((f"[{a}, {a + step})", c, a, a + step - 1))
    return rows


def hist_text(rows: list[Row]) -> str:
    from ..histogram import format_bpftrace_rows
    text = format_bpftrace_rows((label, c) for label, c, _, _ in rows)
    return text + "\n" if text else ""


class MapData:
    """A map read back from the kernel: entries keyed by decoded key."""

    def __init__(self, name: str, layout: MapLayout,
                 raw: list[tuple[bytes, bytes]]) -> None:
        self.name = name
        self.layout = layout
        info = layout.info
        self.kind = info.value.kind
        self.entries: dict[Any, Any] = {}
        ksz = layout.user_key_size
        for kb, vb in raw:
            key = decode(info.key, kb) if info.key is not None else None
            if self.kind in ("hist", "lhist"):
                bucket = struct.unpack_from("<Q", kb, ksz)[0]
                self.entries.setdefault(key, {})[bucket] = struct.unpack_from("<Q", vb)[0]
            elif self.kind in ("avg", "stats"):
                cnt, total = struct.unpack_from("<Qq", vb)
                self.entries[key] = (cnt, total)
            elif self.kind == "count":
                self.entries[key] = struct.unpack_from("<Q", vb)[0]
            elif self.kind in ("sum", "min", "max"):
                self.entries[key] = struct.unpack_from("<q", vb)[0]
            else:
                self.entries[key] = decode(info.value, vb)

    def sort_value(self, v: Any) -> Any:
        if self.kind in ("hist", "lhist"):
            return sum(v.values())
        if self.kind in ("avg", "stats"):
            return _avg(v)
        if isinstance(v, (int, str)):
            return (0, v) if isinstance(v, int) else (1, v)
        return str(v)

    def sorted(self) -> list[tuple[Any, Any]]:
        items = list(self.entries.items())
        try:
            items.sort(key=lambda kv: _key_order(kv[0]))
        except TypeError:
            pass
        items.sort(key=lambda kv: self.sort_value(kv[1]))
        return items


def _key_order(k: Any) -> Any:
    return k if k is not None else 0


def _avg(v: tuple[int, int]) -> int:
    cnt, total = v
    if not cnt:
        return 0
    q = abs(total) // cnt
    return q if total >= 0 else -q


def format_map_text(m: MapData, fmt: Formatter) -> str:
    info = m.layout.info
    if not m.entries:
        if info.key is None and m.kind in ("count", "sum", "int"):
            return f"{m.name}: 0\n"  # bpftrace 0.17 creates keyless maps zeroed
        return "\n"  # and prints an empty keyed map as a blank line
    out = []
    for key, v in m.sorted():
        name = m.name
        if key is not None:
            name += "[" + fmt.value(info.key, key, True) + "]"  # type: ignore[arg-type]
        if m.kind in ("hist", "lhist"):
            out.append(f"{name}: \n{hist_text(hist_rows(v, info.value))}\n")
        elif m.kind == "stats":
            out.append(f"{name}: count {v[0]}, average {_avg(v)}, total {v[1]}\n")
        elif m.kind == "avg":
            out.append(f"{name}: {_avg(v)}\n")
        else:
            out.append(f"{name}: {fmt.value(info.value, v)}\n")
    if m.kind in ("avg", "stats") and out:
        out.append("\n")
    return "".join(out)


def _json_key(fmt: Formatter, t: Type, k: Any) -> str:
    if t.kind == "tuple":
        return ",".join(fmt.value(i, x, True) for i, x in zip(t.items, k, strict=True))
    return fmt.value(t, k, True)


def _json_value(fmt: Formatter, t: Type, v: Any) -> Any:
    if t.kind == "int" or isinstance(v, int):
        return v
    return fmt.value(t, v)


def format_map_json(m: MapData, fmt: Formatter) -> str:
    info = m.layout.info

    def one(v: Any) -> Any:
        if m.kind in ("hist", "lhist"):
            rows = []
            for _, c, lo, hi in hist_rows(v, info.value):
                if not c:
                    continue
                d: dict[str, Any] = {}
                if lo is not None:
                    d["min"] = lo
                if hi is not None:
                    d["max"] = hi
                d["count"] = c
                rows.append(d)
            return rows
        if m.kind == "stats":
            return {"count": v[0], "average": _avg(v), "total": v[1]}
        if m.kind == "avg":
            return _avg(v)
        return _json_value(fmt, info.value, v)

    kind = {"hist": "hist", "lhist": "hist", "stats": "stats", "avg": "stats"}.get(m.kind, "map")
    items = m.sorted()
    if info.key is None:
        data: Any = one(items[0][1]) if items else None
    else:
        data = {_json_key(fmt, info.key, k): one(v) for k, v in items}
    return json.dumps({"type": kind, "data": {m.name: data}})
