"""``bpfkit trace``: bpftrace's language compiled by bpfkit itself (no clang, no LLVM).

Layers: :mod:`.lexer` and :mod:`.parser` (text -> :mod:`.ast`), :mod:`.check` (types,
tracepoint formats, BTF; pure given an Env), :mod:`.codegen` (-> bpfkit.asm), then
:mod:`.runtime` (maps, load, attach, events) and :mod:`.output` (bpftrace's formats).
"""

from __future__ import annotations

from .errors import TraceError, TraceSyntaxError, TraceTypeError
from .parser import parse

__all__ = ["TraceError", "TraceSyntaxError", "TraceTypeError", "parse"]
