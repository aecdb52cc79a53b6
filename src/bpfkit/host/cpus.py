"""CPU lists of this machine (online, possible) and the kernel's ``0-3,5`` list syntax."""

from __future__ import annotations

import os
from functools import lru_cache

from ..errors import ParseError

__all__ = ["parse_cpu_list", "online_cpus", "possible_cpus"]


# Linux's NR_CPUS tops out at 8192; a list naming more is not one the kernel wrote.
MAX_CPUS = 1 << 16


def parse_cpu_list(text: str) -> list[int]:
    """``"0-3,5"`` -> ``[0, 1, 2, 3, 5]`` (the format of /sys/devices/system/cpu/*);
    ParseError when malformed."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
            else:
                lo = hi = int(part)
        except ValueError:
            raise ParseError(f"malformed CPU list {text[:80]!r}") from None
        if not 0 <= lo <= hi < MAX_CPUS or len(cpus) + hi - lo >= MAX_CPUS:
            raise ParseError(f"CPU list {text[:80]!r}: {part[:40]!r} is not a range of CPU "
                             f"numbers below {MAX_CPUS}")
        cpus.extend(range(lo, hi + 1))
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
