"""This machine's architecture as the kernel names things: the prefix of syscall wrapper
symbols (``__x64_sys_openat``)."""

from __future__ import annotations

import platform

__all__ = ["arch_syscall_prefix"]

_SYSCALL_PREFIX = {"x86_64": "__x64_", "aarch64": "__arm64_", "arm64": "__arm64_",
                   "s390x": "__s390x_", "riscv64": "__riscv_", "ppc64le": "", "ppc64": "",
                   "i686": "__ia32_", "i386": "__ia32_", "loongarch64": ""}


def arch_syscall_prefix(machine: str | None = None) -> str:
    """The wrapper prefix syscalls would have on ``machine`` (default: this one), "" if the
    architecture has none.  Whether the running kernel uses wrappers at all is the feature
    probe ``bpfkit.features.has_syscall_wrapper``."""
    return _SYSCALL_PREFIX.get(machine if machine is not None else platform.machine(), "")
