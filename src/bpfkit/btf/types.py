"""The BTF type model: one small mutable dataclass per BTF kind.

References between types are type ids (plain ints), never Python objects, so that a
:class:`~bpfkit.btf.Spec` can decode kernel BTF lazily (a type is only built when
someone asks for it) and so that a loader can rewrite a type in place without chasing
object graphs.  Every type carries its ``id`` and ``name`` ("" for anonymous types);
``kind`` is a class constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

# --- kinds (include/uapi/linux/btf.h) -------------------------------------------------
BTF_KIND_UNKN = 0
BTF_KIND_INT = 1
BTF_KIND_PTR = 2
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_UNION = 5
BTF_KIND_ENUM = 6
BTF_KIND_FWD = 7
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10
BTF_KIND_RESTRICT = 11
BTF_KIND_FUNC = 12
BTF_KIND_FUNC_PROTO = 13
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BTF_KIND_FLOAT = 16
BTF_KIND_DECL_TAG = 17
BTF_KIND_TYPE_TAG = 18
BTF_KIND_ENUM64 = 19
BTF_KIND_MAX = BTF_KIND_ENUM64

KIND_NAMES: dict[int, str] = {
    BTF_KIND_UNKN: "UNKN", BTF_KIND_INT: "INT", BTF_KIND_PTR: "PTR", BTF_KIND_ARRAY: "ARRAY",
    BTF_KIND_STRUCT: "STRUCT", BTF_KIND_UNION: "UNION", BTF_KIND_ENUM: "ENUM",
    BTF_KIND_FWD: "FWD", BTF_KIND_TYPEDEF: "TYPEDEF", BTF_KIND_VOLATILE: "VOLATILE",
    BTF_KIND_CONST: "CONST", BTF_KIND_RESTRICT: "RESTRICT", BTF_KIND_FUNC: "FUNC",
    BTF_KIND_FUNC_PROTO: "FUNC_PROTO", BTF_KIND_VAR: "VAR", BTF_KIND_DATASEC: "DATASEC",
    BTF_KIND_FLOAT: "FLOAT", BTF_KIND_DECL_TAG: "DECL_TAG", BTF_KIND_TYPE_TAG: "TYPE_TAG",
    BTF_KIND_ENUM64: "ENUM64",
}

# --- INT encoding bits ----------------------------------------------------------------
BTF_INT_SIGNED = 1
BTF_INT_CHAR = 2
BTF_INT_BOOL = 4

# --- linkage --------------------------------------------------------------------------
BTF_FUNC_STATIC = 0
BTF_FUNC_GLOBAL = 1
BTF_FUNC_EXTERN = 2

BTF_VAR_STATIC = 0
BTF_VAR_GLOBAL_ALLOCATED = 1
BTF_VAR_GLOBAL_EXTERN = 2


class FuncLinkage(IntEnum):
    STATIC = BTF_FUNC_STATIC
    GLOBAL = BTF_FUNC_GLOBAL
    EXTERN = BTF_FUNC_EXTERN


class VarLinkage(IntEnum):
    STATIC = BTF_VAR_STATIC
    GLOBAL_ALLOCATED = BTF_VAR_GLOBAL_ALLOCATED
    GLOBAL_EXTERN = BTF_VAR_GLOBAL_EXTERN


# --- types ----------------------------------------------------------------------------
@dataclass(slots=True)
class BTFType:
    """Common base: ``id`` and ``name`` are keyword-only so kind fields stay positional."""

    id: int = field(default=0, kw_only=True)
    name: str = field(default="", kw_only=True)
    kind: ClassVar[int] = BTF_KIND_UNKN

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"KIND{self.kind}")


@dataclass(slots=True)
class Void(BTFType):
    """Type id 0: ``void``.  It has no record in the BTF blob."""

    kind: ClassVar[int] = BTF_KIND_UNKN

    @property
    def kind_name(self) -> str:
        return "VOID"


@dataclass(slots=True)
class Int(BTFType):
    """An integer; ``encoding`` is a mask of BTF_INT_SIGNED/CHAR/BOOL, ``bits`` its width."""

    size: int
    encoding: int = 0
    offset: int = 0
    bits: int = -1

    kind: ClassVar[int] = BTF_KIND_INT

    def __post_init__(self) -> None:
        if self.bits < 0:
            self.bits = self.size * 8

    @property
    def signed(self) -> bool:
        return bool(self.encoding & BTF_INT_SIGNED)

    @property
    def is_char(self) -> bool:
        return bool(self.encoding & BTF_INT_CHAR)

    @property
    def is_bool(self) -> bool:
        return bool(self.encoding & BTF_INT_BOOL)


@dataclass(slots=True)
class Pointer(BTFType):
    type: int
    kind: ClassVar[int] = BTF_KIND_PTR


@dataclass(slots=True)
class Array(BTFType):
    type: int
    index_type: int
    nelems: int
    kind: ClassVar[int] = BTF_KIND_ARRAY


@dataclass(slots=True)
class Member:
    """A struct/union member.  ``bitfield_size`` is 0 for a plain member.

    Offsets are always in bits; the encoder picks the ``kind_flag`` layout itself
    (set whenever a member has a non-zero ``bitfield_size``).
    """

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0

    @property
    def byte_offset(self) -> int:
        return self.bit_offset // 8


@dataclass(slots=True)
class Composite(BTFType):
    """Shared shape of :class:`Struct` and :class:`Union`."""

    size: int = 0
    members: list[Member] = field(default_factory=list)

    def member(self, name: str) -> Member:
        """Return the member called ``name`` (KeyError if absent); anonymous members are not searched."""
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)


@dataclass(slots=True)
class Struct(Composite):
    kind: ClassVar[int] = BTF_KIND_STRUCT


@dataclass(slots=True)
class Union(Composite):
    kind: ClassVar[int] = BTF_KIND_UNION


@dataclass(slots=True)
class EnumValue:
    name: str
    value: int


@dataclass(slots=True)
class EnumBase(BTFType):
    """Shared shape of :class:`Enum` and :class:`Enum64`."""

    size: int = 4
    signed: bool = False
    values: list[EnumValue] = field(default_factory=list)

    def value_of(self, name: str) -> int:
        for v in self.values:
            if v.name == name:
                return v.value
        raise KeyError(name)

    def as_dict(self) -> dict[str, int]:
        return {v.name: v.value for v in self.values}


@dataclass(slots=True)
class Enum(EnumBase):
    kind: ClassVar[int] = BTF_KIND_ENUM


@dataclass(slots=True)
class Enum64(EnumBase):
    kind: ClassVar[int] = BTF_KIND_ENUM64


@dataclass(slots=True)
class Fwd(BTFType):
    is_union: bool = False
    kind: ClassVar[int] = BTF_KIND_FWD


@dataclass(slots=True)
class Typedef(BTFType):
    type: int
    kind: ClassVar[int] = BTF_KIND_TYPEDEF


@dataclass(slots=True)
class Qualifier(BTFType):
    """Shared shape of const/volatile/restrict."""

    type: int


@dataclass(slots=True)
class Volatile(Qualifier):
    kind: ClassVar[int] = BTF_KIND_VOLATILE


@dataclass(slots=True)
class Const(Qualifier):
    kind: ClassVar[int] = BTF_KIND_CONST


@dataclass(slots=True)
class Restrict(Qualifier):
    kind: ClassVar[int] = BTF_KIND_RESTRICT


@dataclass(slots=True)
class Func(BTFType):
    """A function: ``type`` is its FUNC_PROTO, ``linkage`` a BTF_FUNC_* value."""

    type: int
    linkage: int = BTF_FUNC_STATIC
    kind: ClassVar[int] = BTF_KIND_FUNC


@dataclass(slots=True)
class Param:
    """A FUNC_PROTO parameter; a final ``Param("", 0)`` means ``...`` (varargs)."""

    name: str
    type: int


@dataclass(slots=True)
class FuncProto(BTFType):
    return_type: int
    params: list[Param] = field(default_factory=list)
    kind: ClassVar[int] = BTF_KIND_FUNC_PROTO

    @property
    def variadic(self) -> bool:
        return bool(self.params) and self.params[-1].type == 0 and not self.params[-1].name


@dataclass(slots=True)
class Var(BTFType):
    type: int
    linkage: int = BTF_VAR_STATIC
    kind: ClassVar[int] = BTF_KIND_VAR


@dataclass(slots=True)
class VarSecinfo:
    type: int
    offset: int
    size: int


@dataclass(slots=True)
class Datasec(BTFType):
    size: int = 0
    vars: list[VarSecinfo] = field(default_factory=list)
    kind: ClassVar[int] = BTF_KIND_DATASEC


@dataclass(slots=True)
class Float(BTFType):
    size: int
    kind: ClassVar[int] = BTF_KIND_FLOAT


@dataclass(slots=True)
class DeclTag(BTFType):
    """A tag on a type (``component_idx == -1``) or on a member/parameter.

    ``attr`` mirrors the kind_flag newer compilers set when the tag is an attribute
    to print verbatim (``__attribute__((...))``) rather than ``btf_decl_tag``.
    """

    type: int
    component_idx: int = -1
    attr: bool = False
    kind: ClassVar[int] = BTF_KIND_DECL_TAG


@dataclass(slots=True)
class TypeTag(BTFType):
    type: int
    attr: bool = False
    kind: ClassVar[int] = BTF_KIND_TYPE_TAG


AnyType = (Void | Int | Pointer | Array | Struct | Union | Enum | Enum64 | Fwd | Typedef
           | Volatile | Const | Restrict | Func | FuncProto | Var | Datasec | Float | DeclTag
           | TypeTag)

KIND_CLASSES: dict[int, type[BTFType]] = {
    BTF_KIND_INT: Int, BTF_KIND_PTR: Pointer, BTF_KIND_ARRAY: Array, BTF_KIND_STRUCT: Struct,
    BTF_KIND_UNION: Union, BTF_KIND_ENUM: Enum, BTF_KIND_FWD: Fwd, BTF_KIND_TYPEDEF: Typedef,
    BTF_KIND_VOLATILE: Volatile, BTF_KIND_CONST: Const, BTF_KIND_RESTRICT: Restrict,
    BTF_KIND_FUNC: Func, BTF_KIND_FUNC_PROTO: FuncProto, BTF_KIND_VAR: Var,
    BTF_KIND_DATASEC: Datasec, BTF_KIND_FLOAT: Float, BTF_KIND_DECL_TAG: DeclTag,
    BTF_KIND_TYPE_TAG: TypeTag, BTF_KIND_ENUM64: Enum64,
}

# Kinds that only wrap another type and do not change its layout.
MODIFIER_KINDS = frozenset({BTF_KIND_TYPEDEF, BTF_KIND_VOLATILE, BTF_KIND_CONST,
                            BTF_KIND_RESTRICT, BTF_KIND_TYPE_TAG})
QUALIFIER_KINDS = frozenset({BTF_KIND_VOLATILE, BTF_KIND_CONST, BTF_KIND_RESTRICT,
                             BTF_KIND_TYPE_TAG})
