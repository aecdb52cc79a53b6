"""The perf_event and tracefs plumbing the attach modules share, re-exported from its homes
(:mod:`bpfkit.perf_event`, :mod:`bpfkit.host.tracefs`, :mod:`bpfkit.host.mounts`,
:mod:`bpfkit.host.cpus`) under the names ``bpfkit.attach.perf`` has always had."""

from __future__ import annotations

from ..host.cpus import online_cpus, parse_cpu_list
from ..host.mounts import find_mount
from ..host.tracefs import (
    PROBE_EVENT_KIND,
    ProbeEvent,
    _reclaimed,
    _registry,
    _write_line,
    add_probe_event,
    pmu_retprobe_bit,
    pmu_type,
    reclaim_stale_events,
    tracefs_file,
    tracefs_path,
    tracepoint_id,
)
from ..perf_event import (
    ATTR_DISABLED,
    ATTR_FREQ,
    ATTR_INHERIT,
    ATTR_WATERMARK,
    PERF_ATTR_SIZE_VER8,
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_COUNT_SW_CONTEXT_SWITCHES,
    PERF_COUNT_SW_CPU_CLOCK,
    PERF_COUNT_SW_PAGE_FAULTS,
    PERF_COUNT_SW_TASK_CLOCK,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF,
    PERF_FLAG_FD_CLOEXEC,
    PERF_SAMPLE_RAW,
    PERF_TYPE_HARDWARE,
    PERF_TYPE_SOFTWARE,
    PERF_TYPE_TRACEPOINT,
    PerfEvent,
    PerfEventAttr,
    ioctl_disable,
    ioctl_enable,
    ioctl_set_bpf,
    is_einval_like,
    perf_event_attr,
    perf_event_open,
)

__all__ = [
    "PerfEventAttr", "PerfEvent", "perf_event_open", "perf_event_attr", "ioctl_enable",
    "ioctl_disable", "ioctl_set_bpf", "tracefs_path", "tracefs_file", "tracepoint_id",
    "pmu_type", "pmu_retprobe_bit", "online_cpus", "parse_cpu_list", "find_mount",
    "ProbeEvent", "add_probe_event", "reclaim_stale_events", "PROBE_EVENT_KIND", "_registry", "_write_line", "_reclaimed", "is_einval_like",
    "PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE", "PERF_TYPE_TRACEPOINT", "PERF_COUNT_SW_CPU_CLOCK",
    "PERF_COUNT_SW_TASK_CLOCK", "PERF_COUNT_SW_PAGE_FAULTS", "PERF_COUNT_SW_CONTEXT_SWITCHES",
    "PERF_COUNT_SW_BPF_OUTPUT", "PERF_SAMPLE_RAW", "PERF_FLAG_FD_CLOEXEC", "ATTR_DISABLED",
    "ATTR_INHERIT", "ATTR_FREQ", "ATTR_WATERMARK", "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_SET_BPF", "PERF_ATTR_SIZE_VER8",
]
