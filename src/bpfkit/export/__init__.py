"""``bpfkit export``: BPF maps as Prometheus metrics (the Python ebpf_exporter).

A YAML config names BPF objects (or C sources, built with clang), their constants and
probes, and which maps become which counters, gauges and histograms, with labels decoded
from the map keys.  :class:`Exporter` loads and attaches them; :class:`MetricsServer`
serves ``/metrics``.  Only the standard library is needed; ``prometheus_client`` and
PyYAML are used when installed and asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Exporter", "MetricsServer", "ExportConfig", "ConfigError", "load_config",
           "parse_config", "MetricFamily", "render"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import bpfkit.export.config` (e.g. for --check) stays light.
    if name in ("Exporter",):
        from .collector import Exporter
        return Exporter
    if name == "MetricsServer":
        from .server import MetricsServer
        return MetricsServer
    if name in ("ExportConfig", "ConfigError", "load_config", "parse_config"):
        from . import config
        return getattr(config, name)
    if name in ("MetricFamily", "render"):
        from . import textformat
        return getattr(textformat, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
