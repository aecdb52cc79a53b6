"""Histograms of values a BPF program bucketed: log2 and linear, as text or as data.

BPF tools count into slots (``slot = log2(value)`` or ``value / step``) because the
kernel side must stay cheap; this module turns those counts back into the ASCII bars
users know from BCC's ``print_log2_hist`` and bpftrace's ``hist()``/``lhist()``, from a
list of counts or directly from a map whose keys are ``slot`` or ``(section, slot)``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BpfkitError

__all__ = [
    "Bucket", "Histogram", "log2_buckets", "linear_buckets", "format_log2_hist",
    "format_linear_hist", "print_log2_hist", "print_linear_hist", "histograms_from_map",
    "counts_from_items", "log2_slot", "format_bpftrace_rows",
]


@dataclass(frozen=True)
class Bucket:
    """Values ``low <= v <= high`` were seen ``count`` times."""

    low: int
    high: int
    count: int


@dataclass
class Histogram:
    """Buckets as data (for JSON, Prometheus, tests); ``str()`` prints BCC-style bars."""

    kind: str  # "log2" or "linear"
    buckets: list[Bucket]
    section: Any = None
    val_type: str = "value"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "section": self.section, "unit": self.val_type,
                "buckets": [{"low": b.low, "high": b.high, "count": b.count}
                            for b in self.buckets], "total": self.total}

    def percentile(self, p: float) -> int:
        """Upper bound of the bucket holding the ``p``-th percentile (0 < p <= 100)."""
        total = self.total
        if not total:
            return 0
        want = total * p / 100.0
        run = 0
        for b in self.buckets:
            run += b.count
            if run >= want:
                return b.high
        return self.buckets[-1].high

    def format(self, style: str = "bcc", width: int | None = None) -> str:
        counts = [b.count for b in self.buckets]
        if style == "bpftrace":
            return _format_bpftrace(self.buckets, self.kind, width or 52)
        if self.kind == "log2":
            return _format_bcc_log2(self.buckets, counts, self.val_type, width)
        return _format_bcc_linear(self.buckets, counts, self.val_type, width or 40)

    def __str__(self) -> str:
        return self.format()


def log2_slot(value: int) -> int:
    """The slot libbpf-tools' ``log2l()`` gives a value: 0 and 1 share slot 0."""
    return max(int(value).bit_length() - 1, 0)


def _counts(counts: Sequence[int] | Mapping[int, int]) -> list[int]:
    if isinstance(counts, Mapping):
        if not counts:
            return []
        for k in counts:
            if not isinstance(k, int) or k < 0:
                raise BpfkitError(f"histogram slot {k!r} is not a non-negative int")
        n = max(counts) + 1
        if n > 1 << 16:
            raise BpfkitError(f"histogram slot {n - 1} is implausibly large")
        out = [0] * n
        for k, v in counts.items():
            out[k] += int(v)
        return out
    return [int(v) for v in counts]


def log2_buckets(counts: Sequence[int] | Mapping[int, int], *, style: str = "libbpf",
                 trim: bool = True) -> list[Bucket]:
    """Buckets of log2 counts.

    ``style="libbpf"``: slot i holds [2^i, 2^(i+1)-1] and slot 0 holds 0..1 (libbpf-tools'
    ``log2l``).  ``style="bcc"``: slot 0 holds 0 and slot i holds [2^(i-1), 2^i-1] (BCC's
    ``bpf_log2l``, which adds one).  ``trim`` drops empty slots past the last non-empty.
    """
    c = _counts(counts)
    if style not in ("libbpf", "bcc"):
        raise BpfkitError(f"unknown log2 slot style {style!r} (libbpf or bcc)")
    out = []
    for i, v in enumerate(c):
        j = i if style == "libbpf" else i - 1
        if j < 0:
            low = high = 0
        else:
            low, high = 1 << j, (1 << (j + 1)) - 1
            if j == 0:
                low = 0
        out.append(Bucket(low, high, v))
    if style == "bcc" and out and out[0].count == 0:
        out = out[1:]  # BCC never prints its value-0 slot when empty
    if trim:
        while out and out[-1].count == 0:
            out.pop()
    return out


def linear_buckets(counts: Sequence[int] | Mapping[int, int], *, step: int = 1, start: int = 0,
                   trim: bool = True) -> list[Bucket]:
    """Buckets of linear counts: slot i holds [start + i*step, start + (i+1)*step - 1]."""
    if step <= 0:
        raise BpfkitError(f"linear histogram step must be positive, not {step}")
    c = _counts(counts)
    out = [Bucket(start + i * step, start + (i + 1) * step - 1, v) for i, v in enumerate(c)]
    if trim:
        while out and out[-1].count == 0:
            out.pop()
    return out


def _stars(val: int, val_max: int, width: int, ch: str = "*") -> str:
    if val_max <= 0 or val <= 0:
        return ""
    n = min(width, int(val * width / val_max))
    s = ch * n
    if val > val_max:  # cannot happen with a true max; kept for bars capped by the caller
        s = s[:-1] + "+"
    return s


def _format_bcc_log2(buckets: list[Bucket], counts: list[int], val_type: str,
                     width: int | None) -> str:
    if not buckets or not any(counts):
        return ""
    wide = buckets[-1].high >= 1 << 32
    stars = width or (20 if wide else 40)
    vmax = max(counts)
    if wide:
        lines = [f"               {val_type:<29} : count     distribution"]
        fmt = "{:>20} -> {:<20} : {:<8} |{:<" + str(stars) + "}|"
    else:
        lines = [f"     {val_type:<19} : count     distribution"]
        fmt = "{:>10} -> {:<10} : {:<8} |{:<" + str(stars) + "}|"
    for b in buckets:
        lines.append(fmt.format(b.low, b.high, b.count, _stars(b.count, vmax, stars)))
    return "\n".join(lines)


def _format_bcc_linear(buckets: list[Bucket], counts: list[int], val_type: str,
                       width: int) -> str:
    if not buckets or not any(counts):
        return ""
    vmax = max(counts)
    lines = [f"     {val_type:<13} : count     distribution"]
    fmt = "        {:<10} : {:<8} |{:<" + str(width) + "}|"
    for b in buckets:
        lines.append(fmt.format(b.low, b.count, _stars(b.count, vmax, width)))
    return "\n".join(lines)


def _human(v: int) -> str:
    for suffix, shift in (("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if v and v % (1 << shift) == 0:
            return f"{v >> shift}{suffix}"
    return str(v)


def format_bpftrace_rows(rows: Iterable[tuple[str, int]], width: int = 52) -> str:
    """bpftrace's ``hist()``/``lhist()`` lines from (label, count) rows: the label in 16
    columns, the count right-aligned in 8, then a bar of '@' scaled to ``width``
    (checked against bpftrace 0.17's output by tests/trace)."""
    rows = list(rows)
    if not rows:
        return ""
    vmax = max(c for _, c in rows)
    return "\n".join(f"{label:<16}{c:>8} |{_stars(c, vmax, width, '@'):<{width}}|"
                     for label, c in rows)


def _format_bpftrace(buckets: list[Bucket], kind: str, width: int) -> str:
    rows = []
    for b in buckets:
        if kind == "log2" and b.high <= 1 and b.low == b.high:
            label = f"[{b.low}]"
        elif kind == "log2" and b.low == 0 and b.high == 1:
            label = "[0, 2)"
        else:
            label = f"[{_human(b.low)}, {_human(b.high + 1)})"
        rows.append((label, b.count))
    return format_bpftrace_rows(rows, width)


def format_log2_hist(counts: Sequence[int] | Mapping[int, int], val_type: str = "value", *,
                     style: str = "libbpf", output: str = "bcc") -> str:
    """BCC ``print_log2_hist`` text (``output="bpftrace"`` for bpftrace's ``hist()``)."""
    return Histogram("log2", log2_buckets(counts, style=style), val_type=val_type).format(output)


def format_linear_hist(counts: Sequence[int] | Mapping[int, int], val_type: str = "value", *,
                       step: int = 1, start: int = 0, output: str = "bcc") -> str:
    """BCC ``print_linear_hist`` text (``output="bpftrace"`` for ``lhist()``)."""
    return Histogram("linear", linear_buckets(counts, step=step, start=start),
                     val_type=val_type).format(output)


# --------------------------------------------------------------------------- from maps


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(v), "little")
    if isinstance(v, (list, tuple)):  # per-CPU values: the total over CPUs
        return sum(_to_int(x) for x in v)
    if isinstance(v, ctypes._SimpleCData):
        return int(v.value)
    if isinstance(v, (ctypes.Structure, ctypes.Union, ctypes.Array)):
        return int.from_bytes(bytes(v), "little")
    try:
        return int(v)
    except (TypeError, ValueError):
        raise BpfkitError(f"cannot read a count from {type(v).__name__} {v!r}") from None


def _split_default(k: Any) -> tuple[Any, int]:
    """Keys: an int slot, (section, slot), bytes of a u32/u64 slot, or a ctypes struct
    with a ``slot`` field (other fields form the section)."""
    if isinstance(k, tuple) and len(k) == 2:
        return k[0], _to_int(k[1])
    if isinstance(k, (bytes, bytearray)) and len(k) in (1, 2, 4, 8):
        return None, int.from_bytes(k, "little")
    if isinstance(k, ctypes.Structure):
        names = [f[0] for f in k._fields_]
        if "slot" in names:
            rest = tuple(getattr(k, n) for n in names if n != "slot")
            sec = rest[0] if len(rest) == 1 else (rest or None)
            if isinstance(sec, bytes):
                sec = sec.rstrip(b"\0").decode(errors="replace")
            return sec, int(k.slot)
    if isinstance(k, int):
        return None, k
    raise BpfkitError(f"cannot tell the slot of histogram key {k!r}: pass split_key=")


def counts_from_items(items: Iterable[tuple[Any, Any]],
                      split_key: Callable[[Any], tuple[Any, int]] | None = None
                      ) -> dict[Any, dict[int, int]]:
    """Group (key, value) pairs into {section: {slot: count}} (per-CPU values summed)."""
    split = split_key or _split_default
    out: dict[Any, dict[int, int]] = {}
    for k, v in items:
        sec, slot = split(k)
        d = out.setdefault(sec, {})
        d[slot] = d.get(slot, 0) + _to_int(v)
    return out


def histograms_from_map(source: Any, kind: str = "log2", *, val_type: str = "value",
                        split_key: Callable[[Any], tuple[Any, int]] | None = None,
                        style: str = "libbpf", step: int = 1, start: int = 0
                        ) -> list[Histogram]:
    """One Histogram per section of a map (or list of counts, or {slot: count})."""
    if isinstance(source, Mapping) or (isinstance(source, Sequence)
                                       and not isinstance(source, (str, bytes))):
        if isinstance(source, Mapping):
            groups: dict[Any, Any] = counts_from_items(source.items(), split_key)
        else:
            groups = {None: list(source)}
    elif hasattr(source, "items"):
        groups = counts_from_items(source.items(), split_key)
    else:
        raise BpfkitError(f"cannot make a histogram from {type(source).__name__}")
    out = []
    for sec in sorted(groups, key=lambda s: (s is not None, str(s))):
        c = groups[sec]
        if kind == "log2":
            b = log2_buckets(c, style=style)
        elif kind == "linear":
            b = linear_buckets(c, step=step, start=start)
        else:
            raise BpfkitError(f"unknown histogram kind {kind!r} (log2 or linear)")
        out.append(Histogram(kind, b, section=sec, val_type=val_type))
    return out


def _print_sections(hists: list[Histogram], section_header: str, output: str,
                    section_print_fn: Callable[[Any], str] | None,
                    file: Any) -> str:
    parts = []
    for h in hists:
        if h.section is not None:
            label = section_print_fn(h.section) if section_print_fn else h.section
            parts.append(f"\n{section_header} = {label}")
        parts.append(h.format(output))
    text = "\n".join(parts)
    if file is not False:
        import sys
        print(text, file=file or sys.stdout)
    return text


def print_log2_hist(source: Any, val_type: str = "value", section_header: str = "Bucket ptr",
                    *, section_print_fn: Callable[[Any], str] | None = None,
                    split_key: Callable[[Any], tuple[Any, int]] | None = None,
                    style: str = "libbpf", output: str = "bcc", file: Any = None) -> str:
    """Print (and return) log2 histograms of a map/list, one section per key prefix."""
    hs = histograms_from_map(source, "log2", val_type=val_type, split_key=split_key,
                             style=style)
    return _print_sections(hs, section_header, output, section_print_fn, file)


def print_linear_hist(source: Any, val_type: str = "value", section_header: str = "Bucket ptr",
                      *, step: int = 1, start: int = 0,
                      section_print_fn: Callable[[Any], str] | None = None,
                      split_key: Callable[[Any], tuple[Any, int]] | None = None,
                      output: str = "bcc", file: Any = None) -> str:
    """Print (and return) linear histograms of a map/list, one section per key prefix."""
    hs = histograms_from_map(source, "linear", val_type=val_type, split_key=split_key,
                             step=step, start=start)
    return _print_sections(hs, section_header, output, section_print_fn, file)
