"""Types the checker gives expressions and maps, and how each is laid out in memory.

Scalars (``int``, ``ptr``, ``ksym``, ``kstack``) live in a 64-bit register; everything
else (strings, tuples, user stacks/symbols, addresses) lives in a stack buffer of
``size`` bytes.  Map keys, map values and printf records use these layouts, so the
output side decodes what the code generator stored with the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRLEN = 64  # bpftrace's default BPFTRACE_STRLEN
COMM_LEN = 16

SCALAR_KINDS = frozenset({"int", "ptr", "ksym", "kstack", "none"})
AGGREGATES = ("count", "sum", "min", "max", "avg", "stats", "hist", "lhist")


@dataclass(frozen=True)
class Type:
    """``kind``: int str ptr args ksym usym kstack ustack inet tuple none, or an aggregate.

    ``btf`` is the pointee's BTF id for ``ptr`` (0 = untyped), ``user`` says a pointer or
    string lives in user memory, ``items`` are a tuple's element types and ``params``
    an lhist's (min, max, step).
    """

    kind: str
    size: int = 8
    signed: bool = False
    btf: int = 0
    user: bool = False
    items: tuple[Type, ...] = ()
    params: tuple[int, ...] = ()
    value: Any = field(default=None, compare=False)  # a constant string's text

    @property
    def scalar(self) -> bool:
        return self.kind in SCALAR_KINDS

    @property
    def stored(self) -> int:
        """Bytes this type takes in a key, value or record (ints always take 8)."""
        if self.scalar:
            return 8
        return (self.size + 7) // 8 * 8

    def offsets(self) -> list[int]:
        """A tuple's element offsets."""
        out, at = [], 0
        for t in self.items:
            out.append(at)
            at += t.stored
        return out

    def __str__(self) -> str:
        if self.kind == "int":
            return f"{'' if self.signed else 'u'}int{self.size * 8}"
        if self.kind == "str":
            return f"string[{self.size}]"
        if self.kind == "tuple":
            return "(" + ", ".join(str(t) for t in self.items) + ")"
        return self.kind


def int_t(size: int = 8, signed: bool = False) -> Type:
    return Type("int", size, signed)


U64 = int_t(8)
S64 = int_t(8, True)
U32 = int_t(4)
NONE = Type("none", 0)


def str_t(size: int = STRLEN, value: str | None = None) -> Type:
    return Type("str", size, value=value)


def tuple_t(items: list[Type]) -> Type:
    items = [i if i.kind != "str" or i.value is None else str_t(i.size) for i in items]
    return Type("tuple", sum(i.stored for i in items), items=tuple(items))


def storable(t: Type) -> Type:
    """The type a map or variable holds for a value of ``t`` (constant strings widen)."""
    if t.kind == "str":
        return str_t(max(t.size, STRLEN) if t.value is not None else t.size)
    if t.kind == "int":
        return Type("int", 8, t.signed)
    if t.kind == "tuple":
        return tuple_t([storable(i) for i in t.items])
    return t


def unify(a: Type, b: Type) -> Type | None:
    """One type that holds values of both (strings widen to the longer), else None."""
    if a.kind != b.kind:
        return None
    if a.kind == "str":
        return str_t(max(a.size, b.size))
    if a.kind == "int":
        return Type("int", 8, a.signed or b.signed)
    if a.kind == "tuple":
        if len(a.items) != len(b.items):
            return None
        items = [unify(x, y) for x, y in zip(a.items, b.items, strict=True)]
        if any(i is None for i in items):
            return None
        return tuple_t([i for i in items if i is not None])
    return a if a == b else None
