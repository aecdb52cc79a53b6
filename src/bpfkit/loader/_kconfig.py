"""``.kconfig`` extern values: one ``CONFIG_*`` value (from :mod:`bpfkit.host.kconfig`)
encoded the way libbpf stores it in the ``.kconfig`` map (pure)."""

from __future__ import annotations

from ..errors import BpfkitError

__all__ = ["kconfig_value"]


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
