"""BTF-driven codecs (bpfkit.btf.codec) and ctypes types (bpfkit.btf.ctypesgen), on the BTF
of a clang-built object (tests/bpf/codec_types.bpf.c) and on the kernel's own BTF."""

from __future__ import annotations

import ctypes
import keyword
import math
import os
import timeit

import pytest
from conftest import build_bpf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit.btf import Spec, Struct, Union
from bpfkit.btf.codec import (
    BTFCodec,
    CodecError,
    EnumInt,
    Record,
    record_class,
)
from bpfkit.btf.ctypesgen import ctypes_type
from bpfkit.maps import Map

VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    obj = build_bpf("codec_types.bpf.c", out_dir=tmp_path_factory.mktemp("codec"))
    return Spec.load_file(obj)


def test_event_round_trip_and_shapes(spec: Spec) -> None:
    c = BTFCodec(spec, "event")
    assert c.size == 32
    data = c.encode({"pid": 10, "ppid": 1, "comm": "bash", "ts": 123456789})
    assert len(data) == 32
    ev = c.decode(data)
    assert isinstance(ev, Record)
    assert (ev.pid, ev.ppid, ev.comm, ev.ts) == (10, 1, "bash", 123456789)
    assert ev._asdict() == {"pid": 10, "ppid": 1, "comm": "bash", "ts": 123456789}
    assert list(ev) == [10, 1, "bash", 123456789]
    assert repr(ev) == "event(pid=10, ppid=1, comm='bash', ts=123456789)"
    # records, tuples and dicts encode alike; missing fields are zero
    assert c.encode(ev) == data == c.encode((10, 1, "bash", 123456789))
    assert c.decode(c.encode({"pid": 7})) == record_class(spec, "event")(7, 0, "", 0)
    assert c.decode(memoryview(data)) == ev
    # comm: up to the first NUL, bytes accepted
    raw = bytearray(data)
    raw[8:24] = b"ab\0garbage\0\0\0\0\0\0"
    assert c.decode(bytes(raw)).comm == "ab"
    assert c.decode(c.encode({"comm": b"xyz"})).comm == "xyz"


def test_encode_errors(spec: Spec) -> None:
    c = BTFCodec(spec, "event")
    with pytest.raises(CodecError, match="no field"):
        c.encode({"pidd": 1})
    with pytest.raises(CodecError, match="comm"):
        c.encode({"comm": "x" * 17})
    with pytest.raises(CodecError, match="pid"):
        c.encode({"pid": -1})
    with pytest.raises(CodecError, match="needs 32 bytes"):
        c.decode(b"\0" * 31)
    with pytest.raises(CodecError):
        c.encode(3.5)


def test_bitfields_and_enums(spec: Spec) -> None:
    c = BTFCodec(spec, "flags")
    v = {"a": 5, "b": -7, "c": 1, "col": "BLUE", "on": True, "wide": (1 << 40) - 3, "tail": 200}
    f = c.decode(c.encode(v))
    assert (f.a, f.b, f.c, f.on, f.wide, f.tail) == (5, -7, 1, True, (1 << 40) - 3, 200)
    assert f.col == 7 and isinstance(f.col, EnumInt) and f.col.name == "BLUE"
    assert c.decode(c.encode({"col": -3})).col.name == "NEG"
    with pytest.raises(CodecError, match="fit in 3 bits"):
        c.encode({"a": 8})
    # an enum value the enum does not list still decodes, without a name
    m = BTFCodec(spec, "mixed")
    x = m.decode(m.encode({"color": 42}))
    assert x.color == 42 and x.color.name is None


def test_mixed_struct(spec: Spec) -> None:
    c = BTFCodec(spec, "mixed")
    v = {"id": 1 << 63, "as_u32": 0x11223344, "color": "GREEN",
         "pts": [{"x": -1, "y": 2}, (3, 4)], "in_": {"kind": 9, "tag": "abcde"},
         "nums": [1, -2, 3], "ptr": 0xFFFF888000000000, "ratio": 0.25, "f": 1.5, "sc": -5,
         "ok": True, "big": "BIG_B", "huge": -(1 << 100), "uhuge": (1 << 128) - 1,
         "many": [{"x": i, "y": -i} for i in range(100)], "packed_u": {"w0": 7, "w2": 0xABCDE}}
    m = c.decode(c.encode(v))
    assert m.id == 1 << 63
    assert (m.as_u32, m.bytes, m.lo, m.hi) == (0x11223344, [0x44, 0x33, 0x22, 0x11], 0x3344, 0x1122)
    assert m.color.name == "GREEN"
    assert [tuple(p) for p in m.pts] == [(-1, 2), (3, 4), (0, 0)]
    assert m.in_.tag == "abcde" and m.in_.kind == 9
    assert m.nums == [1, -2, 3, 0]
    assert (m.ratio, m.f, m.sc, m.ok) == (0.25, 1.5, -5, True)
    assert m.big == 0xFFFFFFFF00000000 and m.big.name == "BIG_B"
    assert (m.huge, m.uhuge) == (-(1 << 100), (1 << 128) - 1)
    assert m.many[99]._asdict() == {"x": 99, "y": -99}
    assert (m.packed_u.w0, m.packed_u.w1, m.packed_u.w2) == (7, 0, 0xABCDE)
    assert m.name == ""
    assert c.encode(m) == c.encode(v)


def test_packed_struct_and_scalars(spec: Spec) -> None:
    c = BTFCodec(spec, "pkt")
    assert c.size == 7
    p = c.decode(c.encode({"t": 1, "len": 0xDEADBEEF, "port": 443}))
    assert tuple(p) == (1, 0xDEADBEEF, 443)
    e = BTFCodec(spec, "enum big")
    assert e.decode(e.encode("BIG_A")) == 1


# ---------------------------------------------------------------------- hypothesis
def _strategy(spec: Spec, tid: int) -> st.SearchStrategy:
    """Random values of BTF type ``tid`` in the shape the decoder produces."""
    from bpfkit.btf import Array, EnumBase, Float, Int, Pointer
    from bpfkit.btf.codec import _compiler
    comp = _compiler(spec)
    t = comp.peel(tid)
    if isinstance(t, Int):
        if t.is_bool:
            return st.booleans()
        lo, hi = (-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1) if t.signed else (0, (1 << t.bits) - 1)
        return st.integers(lo, hi)
    if isinstance(t, Pointer):
        return st.integers(0, (1 << 64) - 1)
    if isinstance(t, EnumBase):
        return st.sampled_from([v.value for v in t.values])
    if isinstance(t, Float):
        return st.floats(allow_nan=False, width=t.size * 8)
    if isinstance(t, Array):
        if comp.is_char(t.type):
            return st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=t.nelems)
        return st.lists(_strategy(spec, t.type), min_size=t.nelems, max_size=t.nelems)
    assert isinstance(t, (Struct, Union))
    fields: dict[str, st.SearchStrategy] = {}
    for name, ftid, _bo, bs in comp.fields_of(t):
        if bs:
            ft = comp.peel(ftid)
            if isinstance(ft, Int) and ft.is_bool:
                fields[name] = st.booleans()
            elif isinstance(ft, EnumBase):
                fields[name] = st.sampled_from([v.value for v in ft.values
                                                if -(1 << (bs - 1)) <= v.value < (1 << (bs - 1))])
            elif isinstance(ft, Int) and ft.signed:
                fields[name] = st.integers(-(1 << (bs - 1)), (1 << (bs - 1)) - 1)
            else:
                fields[name] = st.integers(0, (1 << bs) - 1)
        else:
            fields[name] = _strategy(spec, ftid)
    if isinstance(t, Union):  # members overlap: set one of them
        return st.one_of([st.fixed_dictionaries({k: v}) for k, v in fields.items()])
    return st.fixed_dictionaries(fields)


def _same(decoded: object, given_value: object) -> bool:
    if isinstance(decoded, Record):
        assert isinstance(given_value, dict)
        return all(_same(getattr(decoded, k), v) for k, v in given_value.items())
    if isinstance(decoded, list):
        return all(_same(a, b) for a, b in zip(decoded, given_value, strict=True))  # type: ignore[call-overload]
    if isinstance(decoded, float):
        return decoded == given_value or (math.isnan(decoded) and math.isnan(given_value))  # type: ignore[arg-type]
    return decoded == given_value


@pytest.mark.parametrize("name", ["event", "flags", "point", "inner", "pkt"])
def test_hypothesis_round_trip(spec: Spec, name: str) -> None:
    tid = spec.find(name, Struct).id
    c = BTFCodec(spec, tid)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_strategy(spec, tid))
    def check(value: dict) -> None:
        data = c.encode(value)
        assert len(data) == c.size
        out = c.decode(data)
        assert _same(out, value), (out, value)
        assert c.encode(out) == data

    check()


def test_hypothesis_mixed(spec: Spec) -> None:
    tid = spec.find("mixed", Struct).id
    c = BTFCodec(spec, tid)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_strategy(spec, tid))
    def check(value: dict) -> None:
        for overlapping in ("bytes", "lo", "hi"):  # anonymous union members: keep as_u32
            value.pop(overlapping)
        out = c.decode(c.encode(value))
        assert _same(out, value)

    check()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=544, max_size=544))
def test_hypothesis_random_bytes_decode_reencode_stable(data: bytes) -> None:
    spec = _SPEC_CACHE.setdefault("s", Spec.load_file(build_bpf("codec_types.bpf.c")))
    c = BTFCodec(spec, "mixed")
    once = c.decode(data)
    again = c.decode(c.encode(once))
    # decoding is lossy only for post-NUL string bytes, bool bytes and padding: a second
    # trip is exact
    assert c.encode(again) == c.encode(once)


_SPEC_CACHE: dict[str, Spec] = {}


# ---------------------------------------------------------------------- speed
def test_decode_speed(spec: Spec) -> None:
    c = BTFCodec(spec, "event")
    data = c.encode({"pid": 1, "ppid": 2, "comm": "python3", "ts": 3})
    dec = c.decode
    n = 50000
    us = min(timeit.repeat(lambda: dec(data), number=n, repeat=3)) / n * 1e6
    print(f"\ndecode of a 32-byte event: {us:.2f} us")
    assert us < 5.0


# ---------------------------------------------------------------------- maps with BTF codecs
@pytest.mark.requires_root
def test_map_with_btf_codecs(spec: Spec) -> None:
    key = BTFCodec(spec, "point")
    val = BTFCodec(spec, "event")
    from bpfkit._consts import MapType
    with Map.create(MapType.HASH, key.size, val.size, 8, key=key, value=val) as m:
        m[{"x": 1, "y": -1}] = {"pid": 5, "comm": "init"}
        got = m[{"x": 1, "y": -1}]
        assert got.pid == 5 and got.comm == "init"
        assert [tuple(k) for k in m.keys()] == [(1, -1)]


# ---------------------------------------------------------------------- kernel BTF
@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="kernel has no BTF")
def test_kernel_struct_codecs() -> None:
    k = Spec.kernel()
    for name in ("task_struct", "sk_buff", "bpf_attr", "inode", "sock"):
        t = k.types_by_name(name, Struct) or k.types_by_name(name, Union)
        c = BTFCodec(k, t[0].id)
        blob = os.urandom(c.size)
        v = c.decode(blob)
        assert c.decode(c.encode(v)) == v or name == "task_struct"  # floats/NaN-free
    ts = BTFCodec(k, "task_struct").decode(bytes(k.find("task_struct", Struct).size))
    assert ts.pid == 0 and ts.comm == ""


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="kernel has no BTF")
def test_ctypes_layout_matches_kernel_btf() -> None:
    k = Spec.kernel()
    names = ["task_struct", "sk_buff", "sock", "inode", "file", "mm_struct", "bpf_attr",
             "bpf_prog", "net_device", "tcp_sock", "page", "super_block", "xdp_md", "iphdr"]
    checked = 0
    for name in names:
        for t in k.types_by_name(name, Struct) + k.types_by_name(name, Union):
            c = ctypes_type(k, t.id)
            assert ctypes.sizeof(c) == t.size, name
            for m in t.members:
                if m.name and not m.bitfield_size:
                    attr = m.name + "_" if keyword.iskeyword(m.name) else m.name
                    assert getattr(c, attr).offset * 8 == m.bit_offset, (name, m.name)
                    checked += 1
    assert checked > 300
    ts = ctypes_type(k, k.find("task_struct", Struct).id)
    assert ctypes_type(k, k.find("task_struct", Struct).id) is ts  # cached
    x = ts()
    x.pid = 42
    assert x.pid == 42


def test_ctypes_bitfields_and_packed(spec: Spec) -> None:
    flags = spec.find("flags", Struct)
    c = ctypes_type(spec, flags.id)
    assert ctypes.sizeof(c) == 8
    data = BTFCodec(spec, flags.id).encode({"a": 5, "b": -7, "c": 1, "col": 7, "on": True,
                                             "wide": 12345678901, "tail": 9})
    x = c.from_buffer_copy(data)
    assert (x.a, x.b, x.c, x.col, x.wide, x.tail) == (5, -7, 1, 7, 12345678901, 9)
    pkt = ctypes_type(spec, spec.find("pkt", Struct).id)
    assert ctypes.sizeof(pkt) == 7 and pkt.len.offset == 1 and pkt.port.offset == 5
    mixed = spec.find("mixed", Struct)
    mc = ctypes_type(spec, mixed.id)
    assert ctypes.sizeof(mc) == mixed.size
    y = mc.from_buffer_copy(BTFCodec(spec, mixed.id).encode({"as_u32": 0x01020304,
                                                            "in_": {"tag": "hi"}}))
    assert y.as_u32 == 0x01020304 and y.lo == 0x0304 and y.in_.tag == b"hi"


def test_bad_types_and_names(spec: Spec) -> None:
    from bpfkit.btf import FuncProto
    from bpfkit.errors import BTFError
    with pytest.raises(BTFError, match="no BTF type named"):
        BTFCodec(spec, "no_such_type")
    with pytest.raises(BTFError, match="out of range"):
        BTFCodec(spec, 10**6)
    protos = [t for t in spec if isinstance(t, FuncProto)]
    if protos:
        with pytest.raises(BTFError, match="no data layout|has no size"):
            BTFCodec(spec, protos[0].id)
