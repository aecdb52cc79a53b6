"""Tokens of bpftrace's language.

Attach points (``tracepoint:syscalls:sys_enter_*``, ``uprobe:/bin/bash:readline``) are
not made of ordinary tokens, so the lexer knows where it is: outside action blocks it
reads whole attach points; inside predicates and blocks it reads expression tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Span, TraceSyntaxError

# Longest first, so '<<=' wins over '<<' and '<'.
_OPS = sorted("""
    <<= >>= == != <= >= && || << >> ++ -- += -= *= /= %= &= |= ^= ->
    + - * / % & | ^ ! ~ < > = ? : ; , . ( ) [ ] { }
""".split(), key=len, reverse=True)

_OPSET = frozenset(_OPS)
_SPACE = re.compile(r"\s+")
_PATH_PROVIDERS = ("uprobe", "uretprobe", "usdt", "u", "ur", "U")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r", "0": "\0", "'": "'"}


@dataclass(frozen=True)
class Token:
    """``kind``: name, int, str, op, var ($x), pos ($1), map (@x or @), attach, eof."""

    kind: str
    value: str
    span: Span
    num: int = 0


def _is_name(c: str) -> bool:
    return c.isalnum() or c == "_"


class Lexer:
    """Turns program text into tokens; the parser asks for attach points explicitly."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str, start: int, end: int | None = None) -> TraceSyntaxError:
        return TraceSyntaxError(msg, Span(start, end if end is not None else start + 1),
                                self.text)

    def skip_space(self) -> None:
        t, n = self.text, len(self.text)
        m = _SPACE.match(t, self.pos)
        if m:
            self.pos = m.end()
        while self.pos < n:
            c = t[self.pos]
            if c.isspace():
                self.pos += 1
            elif t.startswith("//", self.pos):
                e = t.find("\n", self.pos)
                self.pos = n if e < 0 else e + 1
            elif t.startswith("/*", self.pos):
                e = t.find("*/", self.pos + 2)
                if e < 0:
                    raise self.error("unterminated comment", self.pos, self.pos + 2)
                self.pos = e + 2
            else:
                break

    def peek_char(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def attach_point(self) -> Token:
        """One attach point: up to whitespace, ',', '{' or a predicate's '/'."""
        self.skip_space()
        t, n, start = self.text, len(self.text), self.pos
        i = start
        provider_end = i
        while provider_end < n and _is_name(t[provider_end]):
            provider_end += 1
        path_ok = t[start:provider_end] in _PATH_PROVIDERS
        quote = False
        while i < n:
            c = t[i]
            if c == '"':
                quote = not quote
            elif not quote:
                if c.isspace() or c in ",{":
                    break
                if c == "/" and not path_ok:
                    break
            i += 1
        if i == start:
            raise self.error("expected a probe (e.g. tracepoint:syscalls:sys_enter_read)",
                             start)
        self.pos = i
        return Token("attach", t[start:i].replace('"', ""), Span(start, i))

    def next(self) -> Token:
        """The next expression-level token."""
        self.skip_space()
        t, n, s = self.text, len(self.text), self.pos
        if s >= n:
            return Token("eof", "", Span(n, n))
        c = t[s]
        if c.isdigit():
            i = s
            if t.startswith(("0x", "0X"), s):
                i += 2
                while i < n and (t[i] in "0123456789abcdefABCDEF_"):
                    i += 1
                base, digits = 16, t[s + 2:i]
            else:
                while i < n and (t[i].isdigit() or t[i] == "_"):
                    i += 1
                base, digits = 10, t[s:i]
            try:
                num = int(digits.replace("_", ""), base)
            except ValueError:
                raise self.error(f"invalid number {t[s:i]!r}", s, i) from None
            # bpftrace allows a unit suffix on durations; a name right after is an error.
            if i < n and _is_name(t[i]):
                raise self.error(f"invalid number {t[s:i + 1]!r}", s, i + 1)
            self.pos = i
            return Token("int", t[s:i], Span(s, i), num)
        if _is_name(c):
            i = s
            while i < n and _is_name(t[i]):
                i += 1
            self.pos = i
            return Token("name", t[s:i], Span(s, i))
        if c in "$@":
            i = s + 1
            while i < n and _is_name(t[i]):
                i += 1
            word = t[s + 1:i]
            self.pos = i
            if c == "$":
                if not word:
                    raise self.error("expected a variable name or a number after '$'", s)
                if word.isdigit():
                    return Token("pos", t[s:i], Span(s, i), int(word))
                if word[0].isdigit():
                    raise self.error(f"invalid variable name {t[s:i]!r}", s, i)
                return Token("var", t[s:i], Span(s, i))
            if word and word[0].isdigit():
                raise self.error(f"invalid map name {t[s:i]!r}", s, i)
            return Token("map", t[s:i], Span(s, i))
        if c == '"':
            return self._string(s)
        for n_ in (3, 2, 1):
            op = t[s:s + n_]
            if op in _OPSET:
                self.pos = s + n_
                return Token("op", op, Span(s, s + n_))
        raise self.error(f"unexpected character {c!r}", s)

    def _string(self, s: str | int) -> Token:
        assert isinstance(s, int)
        t, n = self.text, len(self.text)
        i, out = s + 1, []
        while True:
            if i >= n or t[i] == "\n":
                raise self.error("unterminated string", s, i)
            c = t[i]
            if c == '"':
                break
            if c == "\\":
                if i + 1 >= n:
                    raise self.error("unterminated string", s, i)
                e = t[i + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    i += 2
                    continue
                if e == "x" and i + 3 < n:
                    try:
                        out.append(chr(int(t[i + 2:i + 4], 16)))
                    except ValueError:
                        raise self.error("invalid \\x escape", i, i + 4) from None
                    i += 4
                    continue
                raise self.error(f"unknown escape '\\{e}'", i, i + 2)
            out.append(c)
            i += 1
        self.pos = i + 1
        return Token("str", "".join(out), Span(s, i + 1))
