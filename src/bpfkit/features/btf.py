"""BTF feature probes: which BTF kinds the kernel accepts, for sanitising an object's BTF."""

from __future__ import annotations

import functools

from .. import syscall as sc
from ..btf import Spec
from ..btf import types as bt
from ..btf.sanitize import BTFFeatures
from ..errors import (
    KernelError,
)


def _btf_probe(types: list[bt.BTFType]) -> bool:
    try:
        fd, _ = sc.btf_load(Spec.build(types).to_bytes())
    except (KernelError, OSError):
        return False
    sc.close_fd(fd)
    return True


@functools.lru_cache(maxsize=1)
def probe_btf_features() -> BTFFeatures:
    """Load one tiny BTF blob per kind (once per process) to see what this kernel takes."""
    def i32() -> bt.Int:
        return bt.Int(4, bt.BTF_INT_SIGNED, name="int")

    return BTFFeatures(
        func=_btf_probe([i32(), bt.FuncProto(1, [bt.Param("a", 1)]),
                         bt.Func(2, bt.BTF_FUNC_STATIC, name="f")]),
        func_global=_btf_probe([i32(), bt.FuncProto(1, [bt.Param("a", 1)]),
                                bt.Func(2, bt.BTF_FUNC_GLOBAL, name="f")]),
        datasec=_btf_probe([i32(), bt.Var(1, bt.BTF_VAR_GLOBAL_ALLOCATED, name="x"),
                            bt.Datasec(4, [bt.VarSecinfo(2, 0, 4)], name=".data")]),
        float_kind=_btf_probe([bt.Float(4, name="float")]),
        decl_tag=_btf_probe([i32(), bt.Var(1, bt.BTF_VAR_STATIC, name="x"),
                             bt.DeclTag(2, -1, name="tag")]),
        type_tag=_btf_probe([i32(), bt.TypeTag(1, name="tag"), bt.Pointer(2)]),
        enum64=_btf_probe([bt.Enum64(8, False, [bt.EnumValue("E", 1 << 40)], name="e")]),
    )
