"""Recursive-descent parser: program text -> :mod:`bpfkit.trace.ast` (pure, no I/O)."""

from __future__ import annotations

from . import ast as A
from .errors import Span, TraceSyntaxError
from .lexer import Lexer, Token

# Binary operators by precedence, loosest first (C's table).
_LEVELS: list[tuple[str, ...]] = [
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
    ("<<", ">>"), ("+", "-"), ("*", "/", "%"),
]
_PREC = {op: i for i, ops in enumerate(_LEVELS) for op in ops}
_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=")
INT_TYPES = {"int8": (1, True), "int16": (2, True), "int32": (4, True), "int64": (8, True),
             "uint8": (1, False), "uint16": (2, False), "uint32": (4, False),
             "uint64": (8, False), "char": (1, True), "short": (2, True), "int": (4, True),
             "long": (8, True), "u8": (1, False), "u16": (2, False), "u32": (4, False),
             "u64": (8, False), "s8": (1, True), "s16": (2, True), "s32": (4, True),
             "s64": (8, True), "unsigned": (4, False), "bool": (1, False)}
MAX_DEPTH = 200


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lex = Lexer(text)
        self.buf: list[Token] = []
        self.in_pred = False
        self.depth = 0

    # ----------------------------------------------------------------- tokens
    def peek(self, k: int = 0) -> Token:
        while len(self.buf) <= k:
            self.buf.append(self.lex.next())
        return self.buf[k]

    def take(self) -> Token:
        tok = self.peek()
        self.buf.pop(0)
        return tok

    def is_op(self, value: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "op" and t.value == value

    def expect(self, value: str) -> Token:
        t = self.peek()
        if t.kind != "op" or t.value != value:
            raise self.error(f"expected '{value}'" + (f", found {t.value!r}" if t.value else
                                                       ", found the end of the program"), t)
        return self.take()

    def error(self, msg: str, tok: Token | Span) -> TraceSyntaxError:
        span = tok.span if isinstance(tok, Token) else tok
        return TraceSyntaxError(msg, span, self.text)

    # ----------------------------------------------------------------- program
    def program(self) -> A.Program:
        probes = []
        while True:
            assert not self.buf
            if not self.lex.peek_char():
                break
            probes.append(self.probe())
        if not probes:
            raise self.error("the program has no probes", Span(0, max(1, len(self.text))))
        return A.Program(Span(0, len(self.text)), probes)

    def probe(self) -> A.Probe:
        aps = []
        while True:
            tok = self.lex.attach_point()
            text = tok.value
            parts = text.split(":")
            aps.append(A.AttachPoint(tok.span, text, parts[0], parts[1:]))
            if self.lex.peek_char() == ",":
                self.lex.pos += 1
                continue
            break
        pred = None
        if self.lex.peek_char() == "/":
            start = self.lex.pos
            self.lex.pos += 1
            self.in_pred = True
            pred = self.expr()
            self.in_pred = False
            end = self.expect("/")
            if not pred:
                raise self.error("empty predicate", Span(start, end.span.end))
        if self.lex.peek_char() != "{":
            raise self.error("expected '{' to start the probe's action block",
                             Span(self.lex.pos, self.lex.pos + 1))
        body = self.block()
        return A.Probe(Span(aps[0].span.start, aps[-1].span.end), aps, pred, body)

    def block(self) -> list[A.Stmt]:
        self.expect("{")
        stmts: list[A.Stmt] = []
        while not self.is_op("}"):
            if self.peek().kind == "eof":
                raise self.error("expected '}' to close the block", self.peek())
            if self.is_op(";"):
                self.take()
                continue
            st = self.stmt()
            stmts.append(st)
            if isinstance(st, (A.If, A.Unroll)):
                continue
            if not self.is_op("}"):
                self.expect(";")
        self.take()
        return stmts

    # ----------------------------------------------------------------- statements
    def stmt(self) -> A.Stmt:
        t = self.peek()
        if t.kind == "name" and t.value == "if":
            return self.if_stmt()
        if t.kind == "name" and t.value == "unroll":
            self.take()
            self.expect("(")
            n = self.peek()
            if n.kind != "int":
                raise self.error("unroll needs a constant count", n)
            self.take()
            self.expect(")")
            if not 1 <= n.num <= 100:
                raise self.error("unroll count must be between 1 and 100", n)
            return A.Unroll(t.span, n.num, self.block())
        if t.kind in ("map", "var"):
            target = self.postfix_target()
            nt = self.peek()
            if nt.kind == "op" and nt.value in _ASSIGN_OPS:
                self.take()
                value = self.expr()
                span = Span(t.span.start, value.span.end)
                if isinstance(target, A.MapRef):
                    return A.AssignMap(span, target, value, nt.value)
                if isinstance(target, A.Var):
                    return A.AssignVar(span, target, value, nt.value)
            if nt.kind == "op" and nt.value in ("++", "--") and \
                    isinstance(target, (A.MapRef, A.Var)):
                self.take()
                one = A.Int(nt.span, 1)
                op = "+=" if nt.value == "++" else "-="
                span = Span(t.span.start, nt.span.end)
                if isinstance(target, A.MapRef):
                    return A.AssignMap(span, target, one, op)
                return A.AssignVar(span, target, one, op)
            # An expression that starts with a map or variable (e.g. `@x->f`): re-parse.
            expr = self.postfix_rest(target)
            expr = self.binary_rest(expr)
            return A.ExprStmt(expr.span, expr)
        if t.kind == "op" and t.value in ("++", "--"):
            self.take()
            target = self.postfix_target()
            if not isinstance(target, (A.MapRef, A.Var)):
                raise self.error(f"'{t.value}' needs a map or a variable", target.span)
            one = A.Int(t.span, 1)
            op = "+=" if t.value == "++" else "-="
            span = Span(t.span.start, target.span.end)
            if isinstance(target, A.MapRef):
                return A.AssignMap(span, target, one, op)
            return A.AssignVar(span, target, one, op)
        e = self.expr()
        return A.ExprStmt(e.span, e)

    def if_stmt(self) -> A.If:
        t = self.take()
        self.expect("(")
        cond = self.expr()
        self.expect(")")
        then = self.block()
        other: list[A.Stmt] = []
        if self.peek().kind == "name" and self.peek().value == "else":
            self.take()
            if self.peek().kind == "name" and self.peek().value == "if":
                other = [self.if_stmt()]
            else:
                other = self.block()
        return A.If(t.span, cond, then, other)

    def postfix_target(self) -> A.Expr:
        t = self.take()
        if t.kind == "map":
            keys: list[A.Expr] = []
            end = t.span.end
            if self.is_op("["):
                self.take()
                keys.append(self.expr())
                while self.is_op(","):
                    self.take()
                    keys.append(self.expr())
                end = self.expect("]").span.end
            return A.MapRef(Span(t.span.start, end), t.value, keys)
        return A.Var(t.span, t.value)

    # ----------------------------------------------------------------- expressions
    def expr(self) -> A.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("expression nested too deeply", self.peek())
        try:
            return self._ternary_rest(self.binary(0))
        finally:
            self.depth -= 1

    def _ternary_rest(self, cond: A.Expr) -> A.Expr:
        """``cond ? a : b`` when a '?' follows, else ``cond`` itself."""
        if not self.is_op("?"):
            return cond
        self.take()
        then = self.expr()
        self.expect(":")
        other = self.expr()
        return A.Ternary(Span(cond.span.start, other.span.end), cond, then, other)

    def _pred_end(self, tok: Token) -> bool:
        return self.in_pred and tok.value == "/" and \
            self.text[tok.span.end:].lstrip().startswith("{")

    def binary(self, level: int) -> A.Expr:
        """Precedence climbing: operators of ``level`` and tighter."""
        return self._climb(self.unary(), level)

    def _climb(self, left: A.Expr, level: int) -> A.Expr:
        while True:
            t = self.peek()
            prec = _PREC.get(t.value, -1) if t.kind == "op" else -1
            if prec < level or self._pred_end(t):
                return left
            self.take()
            right = self.unary()
            while True:
                n = self.peek()
                nprec = _PREC.get(n.value, -1) if n.kind == "op" else -1
                if nprec <= prec or self._pred_end(n):
                    break
                right = self._climb(right, prec + 1)
            left = A.Binop(Span(left.span.start, right.span.end), t.value, left, right)

    def binary_rest(self, left: A.Expr) -> A.Expr:
        """Continue a binary expression whose first operand is already parsed."""
        return self._ternary_rest(self._climb(left, 0))

    def unary(self) -> A.Expr:
        t = self.peek()
        if t.kind == "op" and t.value in ("-", "!", "~", "*", "&"):
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error("expression nested too deeply", t)
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            if t.value == "-" and isinstance(operand, A.Int):
                return A.Int(Span(t.span.start, operand.span.end), -operand.value)
            return A.Unop(Span(t.span.start, operand.span.end), t.value, operand)
        if t.kind == "op" and t.value == "(" and self._is_cast():
            return self.cast()
        return self.postfix()

    def _is_cast(self) -> bool:
        t = self.peek(1)
        if t.kind != "name":
            return False
        if t.value == "struct":
            return True
        if t.value not in INT_TYPES:
            return False
        k = 2
        while self.is_op("*", k):
            k += 1
        return self.is_op(")", k)

    def cast(self) -> A.Expr:
        start = self.take()
        t = self.take()
        name = t.value
        if name == "struct":
            n = self.take()
            if n.kind != "name":
                raise self.error("expected a struct name", n)
            name = f"struct {n.value}"
        ptr = 0
        while self.is_op("*"):
            self.take()
            ptr += 1
        self.expect(")")
        operand = self.unary()
        return A.Cast(Span(start.span.start, operand.span.end), name, ptr, operand)

    def postfix(self) -> A.Expr:
        return self.postfix_rest(self.primary())

    def postfix_rest(self, e: A.Expr) -> A.Expr:
        while True:
            t = self.peek()
            if t.kind != "op":
                return e
            if t.value in ("->", "."):
                self.take()
                n = self.take()
                if n.kind not in ("name", "int"):
                    raise self.error(f"expected a field name after '{t.value}'", n)
                e = A.Field(Span(e.span.start, n.span.end), e, n.value, t.value == "->",
                            n.span)
            elif t.value == "[" and not isinstance(e, A.MapRef):
                self.take()
                idx = self.expr()
                end = self.expect("]")
                e = A.Index(Span(e.span.start, end.span.end), e, idx)
            else:
                return e

    def primary(self) -> A.Expr:
        t = self.peek()
        if t.kind == "int":
            self.take()
            return A.Int(t.span, t.num)
        if t.kind == "str":
            self.take()
            return A.Str(t.span, t.value)
        if t.kind == "pos":
            self.take()
            return A.Positional(t.span, t.num)
        if t.kind in ("map", "var"):
            return self.postfix_target()
        if t.kind == "name":
            self.take()
            if self.is_op("("):
                self.take()
                args: list[A.Expr] = []
                if not self.is_op(")"):
                    args.append(self.expr())
                    while self.is_op(","):
                        self.take()
                        args.append(self.expr())
                end = self.expect(")")
                return A.Call(Span(t.span.start, end.span.end), t.value, args)
            return A.Builtin(t.span, t.value)
        if t.kind == "op" and t.value == "(":
            self.take()
            first = self.expr()
            if self.is_op(","):
                items = [first]
                while self.is_op(","):
                    self.take()
                    items.append(self.expr())
                end = self.expect(")")
                return A.Tuple(Span(t.span.start, end.span.end), items)
            self.expect(")")
            return first
        if t.kind == "eof":
            raise self.error("unexpected end of the program: expected an expression", t)
        raise self.error(f"expected an expression, found {t.value!r}", t)


def parse(text: str) -> A.Program:
    """Parse a whole program; raises TraceSyntaxError pointing at the text."""
    return Parser(text).program()
