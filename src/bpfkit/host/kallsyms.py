"""/proc/kallsyms, read once: kernel symbol -> address, and the sorted table of text
symbols that symbolization and kprobe target lookups search."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["kallsyms", "kallsyms_lookup", "has_symbol"]

KALLSYMS = "/proc/kallsyms"


@lru_cache(maxsize=1)
def kallsyms() -> dict[str, int]:
    """Kernel symbol -> address (first definition wins); {} when unreadable.  Addresses are
    0 without privileges (kptr_restrict), names are still listed."""
    out: dict[str, int] = {}
    try:
        with open(KALLSYMS) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) < 3:
                    continue
                name = parts[2]
                if name not in out:
                    out[name] = int(parts[0], 16)
    except OSError:
        pass
    return out


def kallsyms_lookup(name: str) -> int | None:
    """Address of a kernel symbol; None when absent or hidden (address 0)."""
    addr = kallsyms().get(name)
    return addr if addr else None


def has_symbol(name: str) -> bool:
    """Whether the kernel has a symbol of that name (also without privileges)."""
    return name in kallsyms()
