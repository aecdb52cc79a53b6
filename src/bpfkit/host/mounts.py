"""Mounted file systems: /proc/mounts looked up by type, and mount(2) for tracefs/bpffs."""

from __future__ import annotations

import ctypes

from .. import syscall as sc


def _mounts() -> list[tuple[str, str]]:
    out = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    out.append((parts[2], parts[1].replace("\\040", " ")))
    except OSError:
        pass
    return out


def find_mount(fstype: str) -> str | None:
    """First mount point of a file system type, from /proc/mounts."""
    for t, path in _mounts():
        if t == fstype:
            return path
    return None


def _mount(source: str, target: str, fstype: str) -> bool:
    """mount(2) through libc; False when it fails (not root, no such fs)."""
    libc = sc.libc
    r = libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(0), None)
    return r == 0
