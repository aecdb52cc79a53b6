"""A small YAML subset parser with line numbers, so the exporter needs only the stdlib.

Why not PyYAML: bpfkit's core imports nothing outside the standard library.  Exporter
configs use a small part of YAML: block mappings and sequences, flow ``[a, b]`` and
``{k: v}``, plain/single/double-quoted scalars, ``|``/``>`` block scalars, comments and a
leading ``---``.  Anchors, tags, multi-documents and complex keys are refused with a clear
error instead of being half-supported.

Every mapping and list comes back as :class:`LMap`/:class:`LList` (a ``dict``/``list``)
that remembers the line of each key/item, so config validation can say "line 12: key
'type': ...".  :func:`load` uses PyYAML (if installed) only when asked with
``use_pyyaml=True``; both paths return the same line-annotated types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ParseError
from ..inputfile import read_regular

__all__ = ["LMap", "LList", "YamlError", "loads", "load", "line_of"]


MAX_YAML_FILE = 16 << 20  # configs are kilobytes
MAX_DEPTH = 64  # block and flow nesting; configs use about 5


class YamlError(ParseError):
    """Malformed YAML (or YAML outside the supported subset), with its line number."""

    def __init__(self, message: str, line: int = 0, source: str = "") -> None:
        self.line = line
        self.source = source
        where = f"{source}:{line}: " if source and line else (f"line {line}: " if line else "")
        super().__init__(f"{where}{message}")


class LMap(dict[Any, Any]):
    """A mapping that knows where it and each of its keys were written."""

    line: int = 0

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[Any, int] = {}


class LList(list[Any]):
    """A list that knows where it and each of its items were written."""

    line: int = 0

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


def line_of(container: Any, key: Any = None) -> int:
    """Line of ``container[key]`` (or of the container when key is None); 0 if unknown."""
    if key is None:
        return int(getattr(container, "line", 0))
    lines = getattr(container, "lines", None)
    try:
        if isinstance(lines, dict):
            return int(lines.get(key, getattr(container, "line", 0)))
        if isinstance(lines, list):
            return int(lines[key])
    except (IndexError, TypeError):
        pass
    return int(getattr(container, "line", 0))


@dataclass
class _Line:
    no: int       # 1-based line number
    indent: int   # columns of leading spaces
    text: str     # content without indentation and comment
    raw: str      # the whole physical line (for block scalars)


_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_HEX = re.compile(r"^0x[0-9a-fA-F_]+$")
_OCT = re.compile(r"^0o[0-7_]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "/": "/",
            "a": "\a", "b": "\b", "e": "\x1b", " ": " ", "f": "\f", "v": "\v"}


def _plain(s: str) -> Any:
    """Resolve a plain scalar the way YAML 1.2's core schema does."""
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    try:
        if _INT.match(s):
            return int(s.replace("_", ""))
        if _HEX.match(s):
            return int(s[2:].replace("_", ""), 16)
        if _OCT.match(s):
            return int(s[2:].replace("_", ""), 8)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise YamlError(f"integer {s[:20]}... has {len(s)} digits, too many") from None
    if _FLOAT.match(s) and any(c.isdigit() for c in s):
        return float(s.replace("_", ""))
    if s in (".inf", "+.inf", ".Inf", "+.Inf"):
        return float("inf")
    if s in ("-.inf", "-.Inf"):
        return float("-inf")
    if s in (".nan", ".NaN"):
        return float("nan")
    return s


def _strip_comment(s: str, no: int, src: str) -> str:
    """Drop a trailing ``# comment`` that is outside quotes."""
    quote = ""
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 2
                continue
            if c == quote:
                if quote == "'" and i + 1 < len(s) and s[i + 1] == "'":
                    i += 2
                    continue
                quote = ""
        elif c in "'\"" and (i == 0 or s[i - 1] in " \t[{,:-?"):
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
        i += 1
    return s.rstrip()


def _doc_marker(ln: _Line) -> bool:
    return ln.indent == 0 and (ln.text in ("---", "...") or ln.text.startswith("--- "))


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: list[_Line] = []
        for no, raw in enumerate(text.splitlines(), 1):
            body = raw.lstrip(" ")
            indent = len(raw) - len(body)
            if body.startswith("\t"):
                raise self.err("tabs are not allowed for indentation", no)
            content = _strip_comment(body, no, source)
            if no == 1 and content.startswith("%"):
                raise self.err("YAML directives are not supported", no)
            self.lines.append(_Line(no, indent, content, raw))
        self.pos = 0
        self.depth = 0

    def err(self, msg: str, line: int) -> YamlError:
        return YamlError(msg, line, self.source)

    # ------------------------------------------------------------------ lines

    def skip_blank(self) -> None:
        while self.pos < len(self.lines) and not self.lines[self.pos].text:
            self.pos += 1

    def peek(self) -> _Line | None:
        self.skip_blank()
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    # ------------------------------------------------------------------ document

    def document(self) -> Any:
        ln = self.peek()
        if ln is not None and ln.indent == 0 and (ln.text == "---" or
                                                  ln.text.startswith("--- ")):
            if ln.text[3:].strip():
                raise self.err("content after '---' is not supported", ln.no)
            self.pos += 1
        ln = self.peek()
        if ln is None:
            return None
        value = self.block(ln.indent)
        ln = self.peek()
        if ln is not None:
            if ln.text in ("---", "..."):
                raise self.err("multiple YAML documents are not supported", ln.no)
            raise self.err(f"unexpected indentation or content: {ln.text!r}", ln.no)
        return value

    def nest(self, no: int) -> None:
        """Count one more level of nesting; the parser recurses, so the depth is capped."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.err(f"nesting deeper than {MAX_DEPTH} levels", no)

    def block(self, indent: int) -> Any:
        ln = self.peek()
        assert ln is not None
        self.nest(ln.no)
        try:
            return self._block(ln, indent)
        finally:
            self.depth -= 1

    def _block(self, ln: _Line, indent: int) -> Any:
        if ln.indent != indent:
            raise self.err(f"bad indentation: expected {indent} spaces, got {ln.indent}", ln.no)
        if ln.text == "-" or ln.text.startswith("- "):
            return self.sequence(indent)
        if self.split_key(ln) is not None:
            return self.mapping(indent)
        # A lone scalar (possibly a flow collection) at this level.
        self.pos += 1
        return self.inline(ln.text, ln.no)

    def sequence(self, indent: int, in_mapping: bool = False) -> LList:
        """Items at ``indent``; ``in_mapping``: the list is a value written at its key's
        indentation (``key:\n- a``), so the next key at that indentation ends it."""
        out = LList(self.peek().no if self.peek() else 0)  # type: ignore[union-attr]
        while True:
            ln = self.peek()
            if ln is None or ln.indent < indent or _doc_marker(ln):
                return out
            if ln.indent > indent:
                raise self.err(f"bad indentation of a list item (expected {indent} spaces)",
                               ln.no)
            if not (ln.text == "-" or ln.text.startswith("- ")):
                if in_mapping:
                    return out
                if self.split_key(ln) is not None:
                    raise self.err("a mapping key where a list item ('- ...') was expected",
                                   ln.no)
                raise self.err(f"expected a list item ('- ...'), got {ln.text!r}", ln.no)
            rest = ln.text[1:].lstrip(" ")
            out.lines.append(ln.no)
            if not rest:
                self.pos += 1
                nxt = self.peek()
                if nxt is not None and nxt.indent > indent:
                    out.append(self.block(nxt.indent))
                else:
                    out.append(None)
                continue
            col = indent + (len(ln.text) - len(rest))
            # Re-read the rest of the line as if it started a block at its own column.
            self.lines[self.pos] = _Line(ln.no, col, rest, ln.raw)
            if rest == "-" or rest.startswith("- ") or self.split_key(self.lines[self.pos]):
                out.append(self.block(col))
            else:
                self.pos += 1
                out.append(self.scalar_or_block(rest, ln, indent))

    def mapping(self, indent: int) -> LMap:
        first = self.peek()
        out = LMap(first.no if first else 0)
        while True:
            ln = self.peek()
            if ln is None or ln.indent < indent or _doc_marker(ln):
                return out
            if ln.indent > indent:
                raise self.err(f"bad indentation: expected {indent} spaces, got {ln.indent} "
                               "(a value continued on a new line must be a nested block)",
                               ln.no)
            kv = self.split_key(ln)
            if kv is None:
                if ln.text == "-" or ln.text.startswith("- "):
                    raise self.err("a list item where a mapping key was expected", ln.no)
                raise self.err(f"expected 'key: value', got {ln.text!r}", ln.no)
            key, rest = kv
            if key in out:
                raise self.err(f"duplicate key {key!r} (first on line {out.lines[key]})",
                               ln.no)
            out.lines[key] = ln.no
            self.pos += 1
            if rest:
                out[key] = self.scalar_or_block(rest, ln, indent)
                continue
            nxt = self.peek()
            if nxt is not None and nxt.indent > indent:
                out[key] = self.block(nxt.indent)
            elif nxt is not None and nxt.indent == indent and (
                    nxt.text == "-" or nxt.text.startswith("- ")):
                out[key] = self.sequence(indent, in_mapping=True)
            else:
                out[key] = None

    def split_key(self, ln: _Line) -> tuple[Any, str] | None:
        """``key: rest`` -> (key, rest); None when the line is not a mapping entry."""
        t = ln.text
        if not t or t[0] in "[{":
            return None
        if t[0] in "'\"":
            key, end = self.quoted(t, 0, ln.no)
            rest = t[end:].lstrip(" ")
            if not rest.startswith(":") or (len(rest) > 1 and rest[1] != " "):
                return None
            return key, rest[1:].strip()
        if t.startswith(("? ", "&", "*", "!", "|", ">")):
            if t[0] in "?&*!":
                raise self.err(f"YAML feature not supported here: {t.split()[0]!r}", ln.no)
            return None
        m = re.match(r"^([^:]*?[^ :]|):( |$)", t)
        if m is None or not m.group(1):
            # a bare ':' inside a plain scalar (e.g. "http://x") is not a key
            if t.startswith(":"):
                raise self.err("empty mapping key", ln.no)
            return None
        key = m.group(1)
        if " #" in key:
            return None
        return _plain(key) if not isinstance(_plain(key), float) else key, t[m.end():].strip()

    # ------------------------------------------------------------------ scalars

    def scalar_or_block(self, rest: str, ln: _Line, parent_indent: int) -> Any:
        if rest[0] in "|>" and re.match(r"^[|>][-+]?[0-9]?$", rest):
            return self.block_scalar(rest, ln, parent_indent)
        if rest[0] in "&*!":
            raise self.err(f"YAML anchors, aliases and tags are not supported ({rest.split()[0]!r})",
                           ln.no)
        return self.inline(rest, ln.no)

    def block_scalar(self, header: str, ln: _Line, parent_indent: int) -> str:
        style, chomp = header[0], header[1:2] if header[1:2] in ("-", "+") else ""
        body: list[str] = []
        block_indent = -1
        while self.pos < len(self.lines):
            cur = self.lines[self.pos]
            stripped = cur.raw.strip()
            if stripped:
                ind = len(cur.raw) - len(cur.raw.lstrip(" "))
                if ind <= parent_indent:
                    break
                if block_indent < 0:
                    block_indent = ind
                elif ind < block_indent:
                    break
                body.append(cur.raw[block_indent:])
            else:
                body.append("")
            self.pos += 1
        while body and body[-1] == "" and chomp != "+":
            body.pop()
        if style == "|":
            text = "\n".join(body)
        else:
            text = ""
            for i, b in enumerate(body):
                if i == 0:
                    text = b
                elif b == "" or body[i - 1] == "":
                    text += "\n" if b == "" else b
                else:
                    text += " " + b
        return text if chomp == "-" else text + "\n" if text else text

    def quoted(self, s: str, i: int, no: int) -> tuple[str, int]:
        q = s[i]
        out: list[str] = []
        j = i + 1
        while j < len(s):
            c = s[j]
            if q == "'" and c == "'":
                if j + 1 < len(s) and s[j + 1] == "'":
                    out.append("'")
                    j += 2
                    continue
                return "".join(out), j + 1
            if q == '"' and c == '"':
                return "".join(out), j + 1
            if q == '"' and c == "\\":
                if j + 1 >= len(s):
                    break
                e = s[j + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    j += 2
                    continue
                width = {"x": 2, "u": 4, "U": 8}.get(e)
                if width is None:
                    raise self.err(f"unknown escape '\\{e}' in a double-quoted string", no)
                hexs = s[j + 2:j + 2 + width]
                if len(hexs) != width or not re.fullmatch(r"[0-9a-fA-F]+", hexs):
                    raise self.err(f"bad '\\{e}' escape in a double-quoted string", no)
                out.append(chr(int(hexs, 16)))
                j += 2 + width
                continue
            out.append(c)
            j += 1
        raise self.err("unterminated quoted string (multi-line quoted strings are not "
                       "supported)", no)

    def inline(self, s: str, no: int) -> Any:
        s = s.strip()
        if not s:
            return None
        if s[0] in "[{":
            value, end = self.flow(s, 0, no)
            if s[end:].strip():
                raise self.err(f"unexpected text after a flow collection: {s[end:].strip()!r}",
                               no)
            return value
        if s[0] in "'\"":
            value, end = self.quoted(s, 0, no)
            if s[end:].strip():
                raise self.err(f"unexpected text after a quoted string: {s[end:].strip()!r}",
                               no)
            return value
        if s[0] in "&*!":
            raise self.err(f"YAML anchors, aliases and tags are not supported ({s.split()[0]!r})",
                           no)
        if s.startswith(("- ", "? ")) or s == "-":
            raise self.err(f"unexpected {s[0]!r}: put nested blocks on their own line", no)
        if re.search(r": |:$", s):
            raise self.err(f"a nested mapping must start on its own line: {s!r}", no)
        return _plain(s)

    def flow(self, s: str, i: int, no: int) -> tuple[Any, int]:
        """A flow collection starting at ``s[i]``; returns (value, index after it)."""
        self.nest(no)
        try:
            return self._flow(s, i, no)
        finally:
            self.depth -= 1

    def _flow(self, s: str, i: int, no: int) -> tuple[Any, int]:
        opener = s[i]
        closer = "]" if opener == "[" else "}"
        coll: LList | LMap = LList(no) if opener == "[" else LMap(no)
        j = i + 1

        def skip(k: int) -> int:
            while k < len(s) and s[k] == " ":
                k += 1
            return k

        def item(k: int, stops: str) -> tuple[Any, int]:
            k = skip(k)
            if k >= len(s):
                raise self.err(f"unterminated flow collection (missing {closer!r})", no)
            if s[k] in "[{":
                return self.flow(s, k, no)
            if s[k] in "'\"":
                v, e = self.quoted(s, k, no)
                return v, e
            e = k
            while e < len(s) and s[e] not in stops and not (
                    s[e] == ":" and isinstance(coll, LMap) and (e + 1 >= len(s) or
                                                               s[e + 1] in " ,}")):
                e += 1
            return _plain(s[k:e].strip()), e

        j = skip(j)
        if j < len(s) and s[j] == closer:
            return coll, j + 1
        while True:
            if isinstance(coll, LList):
                v, j = item(j, ",]")
                coll.append(v)
                coll.lines.append(no)
            else:
                k, j = item(j, ",}:")
                j = skip(j)
                if j < len(s) and s[j] == ":":
                    v, j = item(j + 1, ",}")
                else:
                    v = None
                if isinstance(k, (list, dict)):
                    raise self.err("a flow mapping key must be a scalar", no)
                if k in coll:
                    raise self.err(f"duplicate key {k!r} in a flow mapping", no)
                coll[k] = v
                coll.lines[k] = no
            j = skip(j)
            if j >= len(s):
                raise self.err(f"unterminated flow collection (missing {closer!r})", no)
            if s[j] == closer:
                return coll, j + 1
            if s[j] != ",":
                raise self.err(f"expected ',' or {closer!r} in a flow collection, got {s[j]!r}",
                               no)
            j = skip(j + 1)
            if j < len(s) and s[j] == closer:  # trailing comma
                return coll, j + 1


def loads(text: str, source: str = "") -> Any:
    """Parse YAML text (the supported subset); errors are :class:`YamlError` with a line."""
    if "\0" in text:
        raise YamlError("NUL byte in YAML text", 0, source)
    return _Parser(text, source).document()


def _from_pyyaml(text: str, source: str) -> Any:
    """PyYAML's composer, converted to the same line-annotated containers."""
    import yaml  # optional: only when asked for

    def conv(node: Any) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            m = LMap(line)
            for kn, vn in node.value:
                k = conv(kn)
                if k in m:
                    raise YamlError(f"duplicate key {k!r}", kn.start_mark.line + 1, source)
                m[k] = conv(vn)
                m.lines[k] = kn.start_mark.line + 1
            return m
        if isinstance(node, yaml.SequenceNode):
            seq = LList(line)
            for vn in node.value:
                seq.append(conv(vn))
                seq.lines.append(vn.start_mark.line + 1)
            return seq
        return yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), node) if \
            node.style in ("'", '"', "|", ">") else _plain(node.value)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise YamlError(str(getattr(e, "problem", e)), mark.line + 1 if mark else 0, source)
    return None if node is None else conv(node)


def load(path: str, *, use_pyyaml: bool = False) -> Any:
    """Read and parse a YAML file; ``use_pyyaml`` uses PyYAML when it is installed."""
    raw = read_regular(path, "YAML file", MAX_YAML_FILE, YamlError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlError(f"{path} is not UTF-8 text ({e.reason})", 0, "") from e
    if use_pyyaml:
        try:
            import yaml  # noqa: F401
        except ImportError:
            pass
        else:
            return _from_pyyaml(text, path)
    return loads(text, path)
