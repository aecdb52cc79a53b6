"""CPU lists of this machine (online, possible) and the kernel's ``0-3,5`` list syntax."""

from __future__ import annotations

import os
from functools import lru_cache

from ..errors import BpfkitError

__all__ = ["parse_cpu_list", "online_cpus", "possible_cpus"]


def parse_cpu_list(text: str) -> list[int]:
    """``"0-3,5"`` -> ``[0, 1, 2, 3, 5]`` (the format of /sys/devices/system/cpu/*)."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.extend(range(int(lo), int(hi) + 1))
            else:
                cpus.append(int(part))
        except ValueError:
            raise BpfkitError(f"malformed CPU list {text!r}") from None
    return cpus


def _cpu_file(name: str) -> list[int]:
    try:
        with open(f"/sys/devices/system/cpu/{name}") as f:
            return parse_cpu_list(f.read().strip())
    except OSError:
        return list(range(os.cpu_count() or 1))


def online_cpus() -> list[int]:
    """CPUs online now (/sys/devices/system/cpu/online): one perf event or ring per CPU."""
    return _cpu_file("online")


@lru_cache(maxsize=1)
def possible_cpus() -> int:
    """Number of possible CPUs: the size of per-CPU map values, not ``os.cpu_count()``."""
    return (max(_cpu_file("possible"), default=0) + 1) or 1
