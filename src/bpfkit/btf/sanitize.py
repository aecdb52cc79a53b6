"""BTF sanitising, pure: rewrite the kinds an older kernel cannot load (func linkage, datasec,
float, decl tags, type tags, enum64) into ones it can, as libbpf does."""

from __future__ import annotations

from dataclasses import dataclass

from ..btf import Spec
from ..btf import types as bt


@dataclass(frozen=True)
class BTFFeatures:
    """Which BTF kinds the kernel's BTF loader accepts (libbpf's ``FEAT_BTF_*``)."""

    func: bool = True          # FUNC and FUNC_PROTO (4.20+)
    func_global: bool = True   # global linkage of FUNC (5.6)
    datasec: bool = True       # VAR and DATASEC (5.2)
    float_kind: bool = True    # FLOAT (5.13)
    decl_tag: bool = True      # DECL_TAG (5.16)
    type_tag: bool = True      # TYPE_TAG (5.17)
    enum64: bool = True        # ENUM64 and signed enums (6.0)

    @property
    def complete(self) -> bool:
        return all((self.func, self.func_global, self.datasec, self.float_kind,
                    self.decl_tag, self.type_tag, self.enum64))


def sanitize_btf(spec: Spec, features: BTFFeatures) -> Spec:
    """A copy of ``spec`` with the kinds the kernel lacks rewritten into older ones.

    Ids never change (replacements are in place, helpers appended), so map and program
    type ids stay valid.  As libbpf: VAR -> 1-byte INT and DATASEC -> STRUCT; FUNC_PROTO ->
    ENUM and FUNC -> TYPEDEF; global FUNC -> static; FLOAT -> empty STRUCT of the same size;
    DECL_TAG -> 1-byte INT; TYPE_TAG -> CONST; ENUM64 -> UNION of 1-byte placeholders
    (and signed ENUM -> unsigned).
    """
    if features.complete:
        return spec
    out = spec.copy()
    placeholder = 0
    for tid in list(out.own_ids()):
        t = out.type(tid)
        new: bt.BTFType | None = None
        if not features.datasec and isinstance(t, bt.Var):
            new = bt.Int(1, 0, 0, 8, name=t.name)
        elif not features.datasec and isinstance(t, bt.Datasec):
            members = [bt.Member(out.type(v.type).name, v.type, v.offset * 8) for v in t.vars]
            new = bt.Struct(size=t.size, members=members,
                            name=t.name.replace(".", "_").replace("?", "_"))
        elif not features.func and isinstance(t, bt.FuncProto):
            new = bt.Enum(4, False, [bt.EnumValue(prm.name or f"arg{i}", 0)
                                     for i, prm in enumerate(t.params)], name="")
        elif not features.func and isinstance(t, bt.Func):
            new = bt.Typedef(t.type, name=t.name)
        elif not features.func_global and isinstance(t, bt.Func) \
                and t.linkage == bt.BTF_FUNC_GLOBAL:
            t.linkage = bt.BTF_FUNC_STATIC
        elif not features.float_kind and isinstance(t, bt.Float):
            new = bt.Struct(size=t.size, members=[], name="")
        elif not features.decl_tag and isinstance(t, bt.DeclTag):
            new = bt.Int(1, 0, 0, 8, name="")
        elif not features.type_tag and isinstance(t, bt.TypeTag):
            new = bt.Const(t.type)
        elif not features.enum64 and isinstance(t, bt.Enum64):
            if not placeholder:
                placeholder = out.add(bt.Int(1, 0, 0, 8, name="enum64_placeholder"))
            new = bt.Union(size=t.size, members=[bt.Member(v.name, placeholder, 0)
                                                 for v in t.values], name=t.name)
        elif not features.enum64 and isinstance(t, bt.Enum) and t.signed:
            t.signed = False
        if new is not None:
            out[tid] = new
    out.reindex()
    return out
