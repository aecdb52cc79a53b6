"""The running kernel's build configuration, read once from /proc/config.gz or
/boot/config-<release>.

One parser for everything that asks (``.kconfig`` externs, feature probes, ``bpfkit
feature``): ``CONFIG_X=v`` lines give ``v``, and ``# CONFIG_X is not set`` gives ``"n"``,
so "switched off" and "unknown" (absent) stay distinguishable.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache

__all__ = ["parse_kconfig", "kernel_config"]


def parse_kconfig(text: str) -> dict[str, str]:
    """``CONFIG_*`` -> raw value (quotes kept) of a kernel ``.config`` text."""
    cfg: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            cfg[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            cfg[line[2:-len(" is not set")]] = "n"
    return cfg


@lru_cache(maxsize=1)
def kernel_config() -> dict[str, str]:
    """This kernel's configuration; {} when neither file exists."""
    for path in ("/proc/config.gz", f"/boot/config-{os.uname().release}"):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rt", errors="replace") as f:
                    return parse_kconfig(f.read())
            with open(path, errors="replace") as f:
                return parse_kconfig(f.read())
        except OSError:
            continue
    return {}
