"""Feature probes: does this kernel support a program type, map type, helper, attach type,
link type or hook?  Each answer is a cached :class:`Feature` saying why not."""

from __future__ import annotations

from ._probe import (
    Feature,
    clear_cache,
    has_attach_type,
    has_bpf_cookie,
    has_expected_attach_type,
    has_helper,
    has_kprobe_multi,
    has_kprobes,
    has_link_type,
    has_map_type,
    has_program_type,
    has_syscall_wrapper,
    has_tcx,
    has_uprobe_multi,
    has_uprobes,
    kernel_config,
    kernel_version,
    require,
)

__all__ = [
    "Feature", "require", "clear_cache", "has_program_type", "has_map_type", "has_helper",
    "has_attach_type", "has_link_type", "has_kprobes", "has_kprobe_multi",
    "has_uprobe_multi", "has_expected_attach_type", "has_uprobes", "has_tcx", "has_bpf_cookie",
    "has_syscall_wrapper",
    "kernel_version", "kernel_config",
]
