"""Values for ``.kconfig`` and ``.ksyms`` externs, read from the running kernel.

Why here and not in the loader: these are small, independently testable look-ups
(kernel config, kallsyms, kernel version, a couple of feature probes) that tools may
want on their own, e.g. to decide which program variant to load.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache

from .errors import BpfkitError

__all__ = ["kernel_config", "kernel_version", "kallsyms", "kallsyms_lookup",
           "has_syscall_wrapper", "has_bpf_cookie", "kconfig_value"]


@lru_cache(maxsize=1)
def kernel_config() -> dict[str, str]:
    """CONFIG_* -> raw value from /proc/config.gz or /boot/config-$(uname -r); {} if neither."""
    paths = ["/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for p in paths:
        try:
            if p.endswith(".gz"):
                with gzip.open(p, "rt", errors="replace") as f:
                    text = f.read()
            else:
                with open(p, errors="replace") as f:
                    text = f.read()
        except OSError:
            continue
        out: dict[str, str] = {}
        for ln in text.splitlines():
            ln = ln.strip()
            if ln.startswith("CONFIG_") and "=" in ln:
                k, v = ln.split("=", 1)
                out[k] = v
        return out
    return {}


def kernel_version(release: str | None = None) -> int:
    """``KERNEL_VERSION(a, b, c)`` of the running kernel (patch level capped at 255)."""
    rel = release if release is not None else os.uname().release
    nums: list[int] = []
    for part in rel.split(".")[:3]:
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
    major, minor, patch = nums[:3]
    return (major << 16) | (minor << 8) | min(patch, 255)


@lru_cache(maxsize=1)
def kallsyms() -> dict[str, int]:
    """Kernel symbol -> address from /proc/kallsyms (first definition wins)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/kallsyms") as f:
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
    addr = kallsyms().get(name)
    return addr if addr else None


@lru_cache(maxsize=1)
def has_syscall_wrapper() -> bool:
    """Whether syscalls go through arch wrappers (``__x64_sys_*``)."""
    arch = {"x86_64": "__x64_", "aarch64": "__arm64_", "s390x": "__s390x_",
            "riscv64": "__riscv_"}.get(os.uname().machine, "")
    if not arch:
        return False
    if kallsyms():
        return arch + "sys_bpf" in kallsyms()
    try:
        from .btf import Spec
        return bool(Spec.kernel().ids_by_name(arch + "sys_bpf"))
    except BpfkitError:
        return False


@lru_cache(maxsize=1)
def has_bpf_cookie() -> bool:
    """Whether the kernel has the bpf_get_attach_cookie helper (probed by loading a program)."""
    from . import asm
    from ._consts import ProgramType
    from .program import Program
    insns = [asm.call("get_attach_cookie"), asm.mov64_imm(asm.R0, 0), asm.exit()]
    for pt in (ProgramType.TRACEPOINT, ProgramType.KPROBE, ProgramType.PERF_EVENT):
        try:
            p = Program.load(pt, insns, license="GPL", name="probe_cookie")
        except BpfkitError:
            continue
        p.close()
        return True
    return False


def kconfig_value(raw: str, size: int, kind: str) -> bytes:
    """Encode one CONFIG_* value (``y``/``m``/``n``, number or quoted string).

    ``kind`` is "bool", "tristate", "char", "int", "uint" or "str" (char array).
    """
    if kind == "str":
        if not (raw.startswith('"') and raw.endswith('"')):
            raise BpfkitError(f"kconfig value {raw!r} is not a string")
        b = raw[1:-1].encode()[: size - 1]
        return b.ljust(size, b"\0")
    if raw in ("y", "m", "n"):
        if kind == "char":
            return raw.encode().ljust(size, b"\0")
        if kind == "bool" and raw == "m":
            raise BpfkitError("tristate value 'm' cannot be stored in a bool extern")
        v = {"y": 1, "n": 0, "m": 2}[raw]
        return v.to_bytes(size, "little")
    try:
        v = int(raw, 0)
    except ValueError:
        raise BpfkitError(f"kconfig value {raw!r} is not a number") from None
    try:
        return v.to_bytes(size, "little", signed=v < 0)
    except OverflowError:
        raise BpfkitError(f"kconfig value {raw} does not fit in {size} bytes") from None
