"""Errors of the trace compiler: every one points at the program text with a caret."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import BpfkitError, ParseError


@dataclass(frozen=True)
class Span:
    """A half-open character range of the program text (``start`` <= ``end``)."""

    start: int
    end: int


def caret(source: str, span: Span | None, name: str = "stdin") -> str:
    """``file:line:col`` plus the source line and a ``^~~~`` under the span."""
    if span is None:
        return ""
    start = max(0, min(span.start, len(source)))
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    line_no = source.count("\n", 0, start) + 1
    col = start - line_start
    width = max(1, min(span.end, line_end) - start)
    text = source[line_start:line_end].replace("\t", " ")
    return f"{name}:{line_no}:{col + 1}\n{text}\n{' ' * col}^{'~' * (width - 1)}"


class TraceError(BpfkitError):
    """A program that cannot be compiled; ``str()`` shows where, with a caret."""

    def __init__(self, message: str, span: Span | None = None, source: str = "",
                 name: str = "stdin") -> None:
        self.message = message
        self.span = span
        self.source = source
        self.name = name
        super().__init__(self._text())

    def _text(self) -> str:
        where = caret(self.source, self.span, self.name) if self.source else ""
        return f"{where}\n{self.message}" if where else self.message

    def with_source(self, source: str, name: str = "stdin") -> TraceError:
        """The same error, re-rendered against the program text (set once, at the top)."""
        if not self.source:
            self.source, self.name = source, name
            self.args = (self._text(),)
        return self


class TraceSyntaxError(TraceError, ParseError):
    """The program text does not parse."""


class TraceTypeError(TraceError):
    """The program parses but is not valid: unknown probe/field/function, type mismatch."""


def suggest(word: str, choices: Iterable[str], n: int = 3) -> str:
    """`` (did you mean a, b?)`` with the nearest names, or an empty string."""
    import difflib  # only on the error path
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
