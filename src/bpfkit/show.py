"""Decoded values as text and as JSON data, one way for every command that prints them.

Enums by enumerator name, records as ``{field: value}``, ``char[]`` already text (the
codec made it a ``str``), raw bytes (a value no type describes) as hex.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Any

from .btf.codec import EnumInt

__all__ = ["plain", "text", "write_line"]


def plain(v: Any) -> Any:
    """JSON data for ``v`` (also dataclasses, and kernel enums as lower-case names)."""
    if isinstance(v, EnumInt):
        return v.name if v.name is not None else int(v)
    if hasattr(v, "_asdict"):
        return {k: plain(x) for k, x in v._asdict(recursive=False).items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, enum.Enum):
        return v.name.lower()
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    return v


def text(v: Any, limit: int = 16) -> str:
    """One line for ``v``; lists longer than ``limit`` are cut with ``...``."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, EnumInt):
        return v.name if v.name is not None else str(int(v))
    if hasattr(v, "_asdict"):
        v = v._asdict(recursive=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {text(x, limit)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        if len(v) > limit:
            return f"[{', '.join(text(x, limit) for x in v[:limit])}, ...]"
        return "[" + ", ".join(text(x, limit) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def write_line(line: str) -> None:
    """One event, newline included, in a single write: Ctrl-C or SIGTERM while stdout is
    blocked (a full pipe) must not leave a record without its newline, glued to the next."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
