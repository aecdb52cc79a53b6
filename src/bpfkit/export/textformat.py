"""Metric families and the Prometheus text exposition format (version 0.0.4).

Why our own writer: the exporter must work with the standard library alone; when
``prometheus_client`` is installed, :mod:`bpfkit.export.server` hands the same families
to it instead.  The format rules followed here: ``# HELP``/``# TYPE`` once per family,
help escapes ``\\`` and newline, label values escape ``\\``, ``"`` and newline, values
are Go-style floats (``+Inf``, ``-Inf``, ``NaN``), histogram buckets are cumulative with
a final ``le="+Inf"`` equal to ``_count``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["MetricFamily", "Sample", "render", "CONTENT_TYPE", "valid_metric_name",
           "valid_label_name", "format_value", "escape_label_value", "histogram_samples"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("counter", "gauge", "histogram", "untyped")


def valid_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.match(name))


def valid_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name)) and not name.startswith("__")


@dataclass
class Sample:
    """One line: ``name{labels} value`` (name includes a suffix such as ``_bucket``)."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class MetricFamily:
    """All samples of one metric; ``type`` is counter, gauge, histogram or untyped."""

    name: str
    type: str
    help: str = ""
    samples: list[Sample] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float, suffix: str = "") -> None:
        self.samples.append(Sample(self.name + suffix, labels, value))

    def add_histogram(self, labels: dict[str, str], buckets: Sequence[tuple[float, float]],
                      sum_value: float | None = None) -> None:
        """``buckets``: (upper bound, count in that bucket), not cumulative, any order."""
        self.samples.extend(histogram_samples(self.name, labels, buckets, sum_value))


def histogram_samples(name: str, labels: dict[str, str], buckets: Sequence[tuple[float, float]],
                      sum_value: float | None = None) -> list[Sample]:
    """Cumulative ``_bucket`` samples (with ``+Inf``), ``_count`` and optionally ``_sum``."""
    out: list[Sample] = []
    total = 0.0
    merged: dict[float, float] = {}
    for le, n in buckets:
        merged[float(le)] = merged.get(float(le), 0.0) + float(n)
    for le in sorted(merged):
        total += merged[le]
        if math.isinf(le):
            continue
        out.append(Sample(name + "_bucket", {**labels, "le": format_value(le)}, total))
    out.append(Sample(name + "_bucket", {**labels, "le": "+Inf"}, total))
    if sum_value is not None:
        out.append(Sample(name + "_sum", dict(labels), float(sum_value)))
    out.append(Sample(name + "_count", dict(labels), total))
    return out


def format_value(v: float) -> str:
    """Prometheus' float syntax: integers without a fraction, ``+Inf``/``-Inf``/``NaN``."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e17:
        return str(int(v))
    return repr(float(v))


def escape_label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items()) + "}"


def render(families: Iterable[MetricFamily]) -> str:
    """The text exposition of ``families`` (one family per name; empty ones keep HELP/TYPE)."""
    out: list[str] = []
    for fam in families:
        if fam.help:
            out.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        out.append(f"# TYPE {fam.name} {fam.type if fam.type in TYPES else 'untyped'}")
        for s in fam.samples:
            out.append(f"{s.name}{_labels(s.labels)} {format_value(s.value)}")
    return "\n".join(out) + "\n" if out else ""
