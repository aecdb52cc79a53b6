"""Per-kind BTF sanitizing: kinds an old kernel lacks are rewritten, not the BTF dropped."""

from __future__ import annotations

import dataclasses

import pytest

from bpfkit import syscall as sc
from bpfkit.btf import Spec
from bpfkit.btf import types as bt
from bpfkit.loader import BTFFeatures, probe_btf_features, sanitize_btf


def sample() -> Spec:
    """One of every kind an older kernel may lack, plus users of them."""
    return Spec.build([
        bt.Int(4, bt.BTF_INT_SIGNED, name="int"),                                  # 1
        bt.FuncProto(1, [bt.Param("a", 1)]),                                        # 2
        bt.Func(2, bt.BTF_FUNC_GLOBAL, name="gfn"),                                 # 3
        bt.Func(2, bt.BTF_FUNC_STATIC, name="sfn"),                                 # 4
        bt.Var(1, bt.BTF_VAR_GLOBAL_ALLOCATED, name="counter"),                     # 5
        bt.Datasec(8, [bt.VarSecinfo(5, 4, 4)], name=".data.x?"),                   # 6
        bt.Float(8, name="double"),                                                 # 7
        bt.DeclTag(3, -1, name="tagged"),                                           # 8
        bt.TypeTag(1, name="user"),                                                 # 9
        bt.Pointer(9),                                                              # 10
        bt.Enum64(8, False, [bt.EnumValue("BIG", 1 << 40), bt.EnumValue("SMALL", 1)],
                  name="e64"),                                                      # 11
        bt.Enum(4, True, [bt.EnumValue("NEG", -1)], name="senum"),                  # 12
        bt.Struct(size=16, members=[bt.Member("d", 7, 0), bt.Member("e", 11, 64)],
                  name="user_of_all"),                                              # 13
    ])


NONE = BTFFeatures(func=False, func_global=False, datasec=False, float_kind=False,
                   decl_tag=False, type_tag=False, enum64=False)


def test_everything_supported_is_a_no_op() -> None:
    s = sample()
    assert sanitize_btf(s, BTFFeatures()) is s


def test_all_kinds_rewritten() -> None:
    s = sample()
    out = sanitize_btf(s, NONE)
    assert out is not s and s.type(7).kind == bt.BTF_KIND_FLOAT  # input untouched
    assert isinstance(out.type(2), bt.Enum) and [v.name for v in out.type(2).values] == ["a"]
    assert isinstance(out.type(3), bt.Typedef) and out.type(3).name == "gfn"
    assert isinstance(out.type(5), bt.Int) and out.type(5).size == 1
    ds = out.type(6)
    assert isinstance(ds, bt.Struct) and ds.name == "_data_x_" and ds.size == 8
    assert [(m.name, m.type, m.bit_offset) for m in ds.members] == [("counter", 5, 32)]
    f = out.type(7)
    assert isinstance(f, bt.Struct) and f.size == 8 and not f.members
    assert isinstance(out.type(8), bt.Int) and out.type(8).size == 1
    assert isinstance(out.type(9), bt.Const) and out.type(9).type == 1
    u = out.type(11)
    assert isinstance(u, bt.Union) and u.size == 8 and u.name == "e64"
    ph = out.type(u.members[0].type)
    assert isinstance(ph, bt.Int) and ph.name == "enum64_placeholder" and ph.size == 1
    assert [m.name for m in u.members] == ["BIG", "SMALL"]
    assert isinstance(out.type(12), bt.Enum) and not out.type(12).signed
    # ids are stable: users still point at the same ids, with the same sizes
    assert out.sizeof(13) == 16 and out.sizeof(7) == 8 and out.sizeof(11) == 8
    assert len(out) == len(s) + 1  # only the placeholder was appended


@pytest.mark.parametrize("feature", [f.name for f in dataclasses.fields(BTFFeatures)])
def test_one_feature_off(feature: str) -> None:
    out = sanitize_btf(sample(), dataclasses.replace(BTFFeatures(), **{feature: False}))
    kinds = {out.type(i).kind for i in out.own_ids()}
    gone = {"func": bt.BTF_KIND_FUNC_PROTO, "datasec": bt.BTF_KIND_DATASEC,
            "float_kind": bt.BTF_KIND_FLOAT, "decl_tag": bt.BTF_KIND_DECL_TAG,
            "type_tag": bt.BTF_KIND_TYPE_TAG, "enum64": bt.BTF_KIND_ENUM64}.get(feature)
    if gone is not None:
        assert gone not in kinds
    if feature == "func_global":
        assert out.type(3).linkage == bt.BTF_FUNC_STATIC  # type: ignore[attr-defined]
        assert bt.BTF_KIND_FUNC in kinds
    # everything else is untouched
    if feature != "float_kind":
        assert out.type(7).kind == bt.BTF_KIND_FLOAT
    if feature != "enum64":
        assert out.type(11).kind == bt.BTF_KIND_ENUM64


@pytest.mark.requires_root
def test_probes_and_kernel_accepts_sanitized_btf() -> None:
    feats = probe_btf_features()
    assert probe_btf_features() is feats  # cached
    assert feats.complete, feats  # Linux 6.18 knows every kind
    for f in (BTFFeatures(), NONE):
        fd, _ = sc.btf_load(sanitize_btf(sample(), f).to_bytes())
        sc.close_fd(fd)
