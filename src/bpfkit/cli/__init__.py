"""The ``bpfkit`` command: ``main`` builds the parser and dispatches to one module per
command group (``inspect``, ``feature``, ``top``, ``btf_dump``)."""

from __future__ import annotations

from .inspect import (
    _EXTENSIONS,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PERM,
    EXIT_USAGE,
    _load_extensions,
    build_parser,
    emit_json,
    main,
    table,
)

__all__ = ["main", "build_parser", "emit_json", "table", "EXIT_OK", "EXIT_ERROR",
           "EXIT_USAGE", "EXIT_PERM", "_EXTENSIONS", "_load_extensions"]
