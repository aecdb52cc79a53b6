"""The running kernel's version, parsed once: a ``(major, minor, patch)`` tuple and libbpf's
``KERNEL_VERSION(a, b, c)`` code (what ``LINUX_KERNEL_VERSION`` and ``kern_version`` hold)."""

from __future__ import annotations

import os
from functools import lru_cache

__all__ = ["parse_release", "kernel_version", "kernel_version_code"]


def parse_release(release: str) -> tuple[int, int, int]:
    """``"6.18.0-fc"`` -> ``(6, 18, 0)``; missing or non-numeric parts are 0."""
    nums: list[int] = []
    for part in release.split(".")[:3]:
        digits = ""
        for c in part:
            if not c.isdigit():
                break
            digits += c
        nums.append(int(digits) if digits else 0)
        if not digits:
            break
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


@lru_cache(maxsize=1)
def kernel_version() -> tuple[int, int, int]:
    """(major, minor, patch) of the running kernel, from uname."""
    return parse_release(os.uname().release)


def kernel_version_code(release: str | None = None) -> int:
    """``KERNEL_VERSION(a, b, c)`` of ``release`` (default: the running kernel), patch level
    capped at 255 as the kernel's own macro does."""
    major, minor, patch = parse_release(release) if release is not None else kernel_version()
    return (major << 16) | (minor << 8) | min(patch, 255)
