"""The syntax tree of a bpftrace program (what the parser builds, the checker annotates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Span


@dataclass(eq=False)
class Node:
    span: Span


@dataclass(eq=False)
class Expr(Node):
    # Filled by the type checker (a bpfkit.trace.types.Type).
    type: Any = field(default=None, init=False, repr=False)


@dataclass(eq=False)
class Int(Expr):
    value: int


@dataclass(eq=False)
class Str(Expr):
    value: str


@dataclass(eq=False)
class Builtin(Expr):
    """pid, comm, nsecs, args, curtask, arg0, retval, ..."""

    name: str


@dataclass(eq=False)
class Positional(Expr):
    """``$1``: a command-line argument, a number or a string."""

    index: int


@dataclass(eq=False)
class Var(Expr):
    """``$name``: a scratch variable, local to one probe firing."""

    name: str


@dataclass(eq=False)
class MapRef(Expr):
    """``@name`` or ``@name[k1, k2]`` (``keys`` empty for a scalar map)."""

    name: str
    keys: list[Expr]


@dataclass(eq=False)
class Call(Expr):
    name: str
    args: list[Expr]


@dataclass(eq=False)
class Binop(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(eq=False)
class Unop(Expr):
    op: str  # - ! ~ * (deref)
    operand: Expr


@dataclass(eq=False)
class Ternary(Expr):
    cond: Expr
    then: Expr
    other: Expr


@dataclass(eq=False)
class Field(Expr):
    """``expr->name`` (arrow) or ``expr.name``."""

    base: Expr
    name: str
    arrow: bool
    name_span: Span | None = None


@dataclass(eq=False)
class Index(Expr):
    """``expr[i]`` on an array or pointer."""

    base: Expr
    index: Expr


@dataclass(eq=False)
class Cast(Expr):
    """``(type)expr``; ``ptr`` counts the ``*`` after the type name."""

    type_name: str
    ptr: int
    operand: Expr


@dataclass(eq=False)
class Tuple(Expr):
    items: list[Expr]


# --------------------------------------------------------------------------- statements


@dataclass(eq=False)
class Stmt(Node):
    pass


@dataclass(eq=False)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(eq=False)
class AssignMap(Stmt):
    target: MapRef
    value: Expr
    op: str = "="  # '=' or a compound '+=', ... or '++' / '--'


@dataclass(eq=False)
class AssignVar(Stmt):
    target: Var
    value: Expr
    op: str = "="


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: list[Stmt]
    other: list[Stmt]


@dataclass(eq=False)
class Unroll(Stmt):
    count: int
    body: list[Stmt]


# --------------------------------------------------------------------------- probes


@dataclass(eq=False)
class AttachPoint(Node):
    """``provider:target:func`` as written; ``parts`` are the ':'-separated pieces."""

    text: str
    provider: str
    parts: list[str]


@dataclass(eq=False)
class Probe(Node):
    attach_points: list[AttachPoint]
    predicate: Expr | None
    body: list[Stmt]


@dataclass(eq=False)
class Program(Node):
    probes: list[Probe]
