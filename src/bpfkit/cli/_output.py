"""Output shared by every command: exit codes, JSON (one converter for dataclasses, enums,
bytes and BTF records) and plain tables."""

from __future__ import annotations

import argparse
import enum
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PERM = 0, 1, 2, 3

Handler = Callable[[argparse.Namespace], int]


def _jsonable(v: Any) -> Any:
    from ..show import plain
    return plain(v)


def emit_json(v: Any) -> None:
    json.dump(_jsonable(v), sys.stdout, indent=2)
    sys.stdout.write("\n")


def _tname(t: Any) -> str:
    return t.name.lower() if isinstance(t, enum.Enum) else str(t)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cols = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    for r in cols:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
