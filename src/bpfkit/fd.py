"""File-descriptor ownership shared by every kernel object (map, program, link, BTF).

Why a base class: every object that owns an fd must close deterministically (``close()``,
``with``), warn when the garbage collector finds it still open, and pin to bpffs.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from . import syscall as sc

_open_objects: dict[int, str] = {}


class FDObject:
    """Owns one kernel file descriptor."""

    _fd: int
    _kind = "object"

    def __init__(self, fd: int, name: str = "") -> None:
        self._fd = fd
        self.name = name

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self._kind} {self.name!r} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            sc.close_fd(fd)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            try:
                warnings.warn(f"bpfkit {self._kind} {self.name!r} (fd {fd}) was garbage-collected "
                              "while open: close it or use 'with'", ResourceWarning,
                              stacklevel=2)
            except Exception:  # interpreter shutdown
                pass
            sc.close_fd(fd)
            self._fd = -1

    def pin(self, path: str) -> None:
        """Pin to bpffs so the object outlives this process; reopen with ``from_pin``."""
        sc.obj_pin(self.fd, path)

    @staticmethod
    def unpin(path: str) -> None:
        os.unlink(path)

    def dup(self) -> int:
        return os.dup(self.fd)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {self.name!r} {state}>"
