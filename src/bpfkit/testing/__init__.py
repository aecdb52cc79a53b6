"""Helpers for testing BPF code on kernels other than the one running.

Many hooks (kprobes, fentry, lsm...) depend on the kernel's configuration, so a toolkit that
passes its tests on one kernel can still be broken on another.  :mod:`bpfkit.testing.vm`
boots stock Debian kernels under QEMU and runs a command inside them, with the host's files.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VM", "GuestKernel", "VMError"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m bpfkit.testing.vm` does not find the module
    # already imported by its package (runpy warns about that).
    if name in __all__:
        from . import vm
        return getattr(vm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
