"""Block devices for biolatency, biosnoop and bitesize: the kernel's dev_t (major << 20 |
minor, what the block tracepoints report) to and from disk names, read from /sys."""

from __future__ import annotations

import os

from ..errors import BpfkitError

OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 4: "Other"}
OP_LETTERS = {0: "R", 1: "W", 2: "F", 3: "D", 4: "?"}


def _devnames() -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        entries = os.listdir("/sys/dev/block")
    except OSError:
        return out
    for e in entries:
        try:
            major, minor = (int(x) for x in e.split(":"))
            with open(f"/sys/dev/block/{e}/uevent") as f:
                name = next((ln.split("=", 1)[1].strip() for ln in f
                             if ln.startswith("DEVNAME=")), e)
        except (OSError, ValueError):
            continue
        out[(major << 20) | minor] = name
    return out


_NAMES: dict[int, str] = {}


def disk_name(dev: int) -> str:
    """``vda`` for a dev_t, ``MAJ:MIN`` when /sys does not know it."""
    if dev not in _NAMES:
        _NAMES.update(_devnames())
    return _NAMES.get(dev, f"{dev >> 20}:{dev & 0xFFFFF}")


def disk_dev(name: str) -> int:
    """The dev_t of a disk given as ``vda``, ``/dev/vda`` or ``254:0`` (-d DISK)."""
    base = os.path.basename(name)
    for dev, n in _devnames().items():
        if n == base or f"{dev >> 20}:{dev & 0xFFFFF}" == base:
            return dev
    raise BpfkitError(f"-d {name}: no such block device in /sys/dev/block "
                      "(give a name such as vda, or MAJ:MIN)")
