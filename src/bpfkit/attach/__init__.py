"""Attaching programs to hooks.

Tracing (``tracing``: tracepoints, raw_tp, tp_btf/fentry/lsm, iterators, kprobes),
user space (``uprobe``, ``usdt``), cgroups and perf sampling (``cgroup``), feature
probes (``features``) and the perf_event/tracefs plumbing (``perf``).  Networking
hooks live in ``attach.net``.
"""

from __future__ import annotations

import sys as _sys

from .. import features as _features
from ..features import Feature, require
from .cgroup import (
    attach_cgroup,
    attach_perf_event,
    attach_perf_event_all_cpus,
    cgroup2_mount,
    open_perf_events_all_cpus,
)
from .perf import PerfEvent, online_cpus, tracefs_path, tracepoint_id
from .tracing import (
    IterLink,
    PerfIoctlLink,
    PerfLink,
    attach_iter,
    attach_kprobe,
    attach_kprobe_multi,
    attach_ksyscall,
    attach_lsm,
    attach_raw_tracepoint,
    attach_trace,
    attach_tracepoint,
)
from .uprobe import attach_uprobe, attach_uprobe_multi, resolve_binary
from .usdt import UsdtLink, attach_usdt, parse_usdt_notes

# ``bpfkit.attach.features`` (the README's spelling) is bpfkit.features itself.
_sys.modules[__name__ + ".features"] = _features
features = _features

__all__ = [
    "Feature", "IterLink", "PerfEvent", "PerfIoctlLink", "PerfLink", "UsdtLink",
    "attach_cgroup", "attach_iter", "attach_kprobe", "attach_kprobe_multi", "attach_ksyscall",
    "attach_lsm", "attach_perf_event", "attach_perf_event_all_cpus", "attach_raw_tracepoint",
    "attach_trace", "attach_tracepoint", "attach_uprobe", "attach_uprobe_multi", "attach_usdt",
    "cgroup2_mount", "online_cpus", "open_perf_events_all_cpus", "parse_usdt_notes", "require",
    "resolve_binary", "tracefs_path", "tracepoint_id",
]
