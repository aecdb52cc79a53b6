"""Tests for bpfkit.btf: the kernel's own BTF, a clang-built object, round trips,
split BTF, malformed input and fuzzing."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit.btf import (
    BTF_FUNC_GLOBAL,
    BTF_FUNC_STATIC,
    BTF_INT_SIGNED,
    BTF_KIND_ENUM,
    BTF_KIND_FUNC,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPEDEF,
    BTF_VAR_GLOBAL_ALLOCATED,
    Array,
    Const,
    CoreReloKind,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Member,
    Param,
    Pointer,
    Restrict,
    Spec,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
    elf_section,
    parse_btf_ext,
)
from bpfkit.errors import BTFError

VMLINUX = "/sys/kernel/btf/vmlinux"
CLANG = shutil.which("clang-19") or shutil.which("clang")

needs_kernel_btf = pytest.mark.skipif(not os.path.exists(VMLINUX),
                                      reason="kernel has no BTF (CONFIG_DEBUG_INFO_BTF off)")

# --------------------------------------------------------------------------- kernel BTF


@needs_kernel_btf
def test_kernel_known_facts() -> None:
    spec = Spec.kernel()
    assert Spec.kernel() is spec, "kernel BTF must be cached per process"
    assert len(spec) > 100_000
    ts = spec.find("task_struct", Struct)
    assert ts.kind == BTF_KIND_STRUCT and ts.kind_name == "STRUCT"
    pid = ts.member("pid")
    pid_t = spec[pid.type]
    assert isinstance(pid_t, Typedef) and pid_t.name == "pid_t"
    assert spec.type_name(spec.resolve(pid.type)) == "int"
    assert spec.sizeof(pid.type) == 4
    assert spec.sizeof(ts.id) == ts.size and spec.alignof(ts.id) == 8
    assert spec.type_name(ts.id) == "struct task_struct"
    comm = ts.member("comm")
    assert spec.type_name(comm.type) == "char[16]"
    assert spec.sizeof(comm.type) == 16
    mt = spec.find("bpf_map_type", BTF_KIND_ENUM)
    assert isinstance(mt, Enum)
    assert mt.value_of("BPF_MAP_TYPE_RINGBUF") == 27
    # name_of/kind_of answer without decoding
    assert spec.name_of(ts.id) == "task_struct" and spec.kind_of(ts.id) == BTF_KIND_STRUCT
    # a pointer member spells like C
    parent = ts.member("real_parent")
    assert spec.type_name(parent.type) == "struct task_struct *"


@needs_kernel_btf
def test_kernel_lazy_and_lookups() -> None:
    spec = Spec.from_bytes(Path(VMLINUX).read_bytes(), lazy=True)
    assert all(t is None for t in spec._cache[:1000])  # nothing decoded yet
    assert spec.types_by_name("definitely_not_a_kernel_type") == []
    ids = spec.ids_by_name("task_struct")
    assert spec.kind_of(ids[0]) in (BTF_KIND_STRUCT, 7)
    # kind filtering and ambiguity
    with pytest.raises(BTFError, match="no BTF type"):
        spec.find("definitely_not_a_kernel_type")
    funcs = spec.types_by_name("bpf_map_lookup_elem", BTF_KIND_FUNC)
    assert all(isinstance(f, Func) for f in funcs)
    # every named type found through the name index is named that way
    for name in ("list_head", "u32", "sk_buff", "pid"):
        for t in spec.types_by_name(name):
            assert t.name == name
    tp = spec.find("u32", BTF_KIND_TYPEDEF)
    assert spec.type_name(spec.resolve(tp.id)) == "unsigned int"


@needs_kernel_btf
def test_kernel_full_decode_round_trip_is_byte_identical() -> None:
    spec = Spec.from_bytes(Path(VMLINUX).read_bytes(), lazy=True)
    assert spec.to_bytes() == spec.raw  # undecoded types are copied
    for t in spec:  # decode all; each type must re-encode to the same bytes
        assert t.id >= 0
    assert spec.to_bytes() == spec.raw


@needs_kernel_btf
def test_kernel_module_missing() -> None:
    with pytest.raises(BTFError):
        Spec.kernel_module("no_such_module_xyz")


# --------------------------------------------------------------------------- a clang object

PROG_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct flags {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 12;
	unsigned long long big;
};

struct task_struct___local {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct flags);
} counts SEC(".maps");

__u64 hits = 1;
const volatile int target_pid = 0;
char LICENSE[] SEC("license") = "GPL";

static __attribute__((noinline)) int helper_add(struct flags *f, int x)
{
	return f->a + f->c + x;
}

SEC("raw_tp/sched_switch")
int on_switch(void *ctx)
{
	struct task_struct___local *t = (void *)bpf_get_current_task();
	int pid = BPF_CORE_READ(t, pid);
	__u32 key = 0;
	struct flags *f;

	if (target_pid && pid != target_pid)
		return 0;
	f = bpf_map_lookup_elem(&counts, &key);
	if (!f)
		return 0;
	hits++;
	return helper_add(f, pid);
}

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if (bpf_core_field_exists(((struct task_struct___local *)0)->tgid))
		hits += 2;
	return 0;
}
"""


def _section(data: bytes, name: str) -> bytes:
    """Pull one section out of an ELF (bpfkit.elf when present, else btf's mini reader)."""
    try:
        from bpfkit.elf import ElfFile
    except ImportError:
        sec = elf_section(data, name)
        assert sec is not None, name
        return sec
    s = ElfFile(data).section(name)
    assert s is not None, name
    return bytes(s.data())


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    if CLANG is None:
        pytest.skip("clang is not installed: cannot build the BPF test object")
    d = tmp_path_factory.mktemp("btfobj")
    src = d / "prog.c"
    src.write_text(PROG_C)
    out = d / "prog.o"
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    inc = [f"-I/usr/include/{multiarch.stdout.strip()}"] if multiarch.returncode == 0 else []
    subprocess.run([CLANG, "-target", "bpf", "-g", "-O2", *inc, "-c", str(src), "-o", str(out)],
                   check=True)
    data = out.read_bytes()
    return _section(data, ".BTF"), _section(data, ".BTF.ext"), out


def test_object_types(obj: tuple[bytes, bytes, Path]) -> None:
    spec = Spec.from_bytes(obj[0])
    flags = spec.find("flags", Struct)
    assert flags.size == 16
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in flags.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 8, 12), ("big", 64, 0)]
    assert spec.type_name(flags.members[2].type) == "int"
    assert spec.type_name(flags.members[3].type) == "unsigned long long"
    assert spec.alignof(flags.id) == 8
    local = spec.find("task_struct___local", Struct)
    assert [m.name for m in local.members] == ["pid", "tgid"]
    on_switch = spec.find("on_switch", Func)
    assert on_switch.linkage == BTF_FUNC_GLOBAL
    assert spec.type_name(on_switch.id) == "int on_switch(void *)"
    helper = spec.find("helper_add", Func)
    assert helper.linkage == BTF_FUNC_STATIC
    proto = spec[helper.type]
    assert isinstance(proto, FuncProto)
    assert [p.name for p in proto.params] == ["f", "x"]
    assert spec.type_name(proto.params[0].type) == "struct flags *"
    counts = spec.find("counts", Var)
    assert counts.linkage == BTF_VAR_GLOBAL_ALLOCATED
    mapdef = spec.resolve_type(counts.type)
    assert isinstance(mapdef, Struct)
    assert [m.name for m in mapdef.members] == ["type", "max_entries", "key", "value"]
    # __uint(type, N) encodes N as an array length behind a pointer
    ptype = spec[mapdef.member("type").type]
    assert isinstance(ptype, Pointer)
    arr = spec[ptype.type]
    assert isinstance(arr, Array) and arr.nelems == 1  # BPF_MAP_TYPE_HASH
    rodata = spec.find(".rodata", Datasec)
    target = spec[rodata.vars[0].type]
    assert isinstance(target, Var) and target.name == "target_pid"
    assert spec.type_name(target.type) == "const volatile int"
    assert {d.name for d in spec if isinstance(d, Datasec)} >= {".data", ".rodata", ".maps",
                                                                "license"}


def test_object_ext(obj: tuple[bytes, bytes, Path]) -> None:
    spec = Spec.from_bytes(obj[0])
    ext = parse_btf_ext(obj[1], spec)
    assert set(ext.func_info) == {"raw_tp/sched_switch", "tp/syscalls/sys_enter_getpid", ".text"}
    fi = ext.func_info["raw_tp/sched_switch"]
    assert fi[0].insn_off == 0 and spec[fi[0].type_id].name == "on_switch"
    assert spec[ext.func_info[".text"][0].type_id].name == "helper_add"
    lines = ext.line_info["raw_tp/sched_switch"]
    assert lines and all(li.file_name.endswith("prog.c") for li in lines)
    assert any("BPF_CORE_READ(t, pid)" in li.line_text for li in lines)
    assert all(li.insn_off % 8 == 0 and li.insn_idx == li.insn_off // 8 for li in lines)
    assert [li.insn_off for li in lines] == sorted(li.insn_off for li in lines)
    first = lines[0]
    assert spec.string(first.file_name_off) == first.file_name
    assert PROG_C.splitlines()[first.line - 1] == first.line_text
    relos = ext.core_relos["raw_tp/sched_switch"]
    assert len(relos) == 1
    r = relos[0]
    assert r.kind == CoreReloKind.FIELD_BYTE_OFFSET and r.access_str == "0:0"
    assert spec[r.type_id].name == "task_struct___local" and r.accessors == [0, 0]
    assert r.insn_idx == r.insn_off // 8
    (e,) = ext.core_relos["tp/syscalls/sys_enter_getpid"]
    assert e.kind == CoreReloKind.FIELD_EXISTS and e.access_str == "0:1"


def test_load_file_elf_and_raw(obj: tuple[bytes, bytes, Path], tmp_path: Path) -> None:
    from_elf = Spec.load_file(obj[2])
    raw = tmp_path / "prog.btf"
    raw.write_bytes(obj[0])
    assert Spec.load_file(raw) == from_elf == Spec.from_elf_section(obj[0])
    with pytest.raises(BTFError):
        Spec.load_file(tmp_path / "missing.btf")


def test_elf_section_uses_the_one_elf_reader(obj: tuple[bytes, bytes, Path]) -> None:
    from bpfkit.errors import ParseError
    data = obj[2].read_bytes()
    assert elf_section(data, ".BTF") == obj[0]
    assert elf_section(data, ".BTF.ext") == obj[1]
    assert elf_section(data, ".nope") is None
    for n in range(0, len(data), 97):
        try:
            elf_section(data[:n], ".BTF")
        except ParseError:
            pass  # truncated: a parse error, never IndexError/struct.error


def test_object_round_trip_and_rewrite(obj: tuple[bytes, bytes, Path]) -> None:
    spec = Spec.from_bytes(obj[0])
    assert spec.to_bytes() == spec.raw
    assert Spec.from_bytes(spec.to_bytes()) == spec
    ext = parse_btf_ext(obj[1], spec)

    work = spec.copy()
    data = work.find(".data", Datasec)
    assert data.size == 0  # clang leaves it to the loader
    data.size = 8
    data.vars[0].offset = 0
    assert spec.find(".data", Datasec).size == 0, "copy() must not share types"
    # replace a kind an old kernel lacks, as a sanitizer would
    cv = work.find("target_pid", Var)
    work[cv.type] = Int(4, BTF_INT_SIGNED, 0, 32, name="int")
    new_id = work.add(Typedef(cv.type, name="brand_new_name"))
    assert work.find("brand_new_name").id == new_id
    blob = work.to_bytes()
    back = Spec.from_bytes(blob)
    assert back == work and back != spec
    assert back.find(".data", Datasec).size == 8
    # string offsets used by .BTF.ext stay valid in the rewritten blob
    for lines in ext.line_info.values():
        for li in lines:
            assert back.string(li.line_off) == li.line_text
    assert parse_btf_ext(obj[1], back).core_relos == ext.core_relos


# --------------------------------------------------------------------------- building

def _all_kinds() -> list:
    return [
        Int(4, BTF_INT_SIGNED, 0, 32, name="int"),                      # 1
        Pointer(1),                                                     # 2
        Array(1, 1, 16),                                                # 3
        Struct(24, [Member("x", 1, 0), Member("bits", 1, 32, 5), Member("arr", 3, 64)],
               name="s"),                                               # 4  (kind_flag)
        Union(4, [Member("i", 1, 0), Member("f", 14, 0)], name="u"),    # 5
        Enum(4, True, [EnumValue("NEG", -1), EnumValue("POS", 7)], name="e"),  # 6
        Enum64(8, False, [EnumValue("BIG", 1 << 40)], name="e64"),      # 7
        Fwd(True, name="fwd_union"),                                    # 8
        Typedef(1, name="myint"),                                       # 9
        Volatile(9),                                                    # 10
        Const(10),                                                      # 11
        Restrict(2),                                                    # 12
        FuncProto(1, [Param("a", 1), Param("", 0)]),                    # 13 (variadic)
        Float(4, name="float"),                                         # 14
        Func(13, BTF_FUNC_GLOBAL, name="fn"),                           # 15
        Var(1, BTF_VAR_GLOBAL_ALLOCATED, name="v"),                     # 16
        Datasec(4, [VarSecinfo(16, 0, 4)], name=".data"),               # 17
        DeclTag(4, 1, name="tag"),                                      # 18
        TypeTag(1, True, name="user"),                                  # 19
        Enum64(8, True, [EnumValue("MIN", -(1 << 63))], name="s64"),    # 20
    ]


@pytest.mark.parametrize("order", ["little", "big"])
def test_build_all_kinds_round_trip(order: str) -> None:
    spec = Spec.build([Void(), *_all_kinds()], byteorder=order)
    assert len(spec) == 21 and spec.byteorder == order
    back = Spec.from_bytes(spec.to_bytes())
    assert back == spec and back.byteorder == order
    assert back.to_bytes() == spec.to_bytes()
    assert back[4].members[1] == Member("bits", 1, 32, 5)  # type: ignore[attr-defined]
    assert back[6].values[0].value == -1  # type: ignore[attr-defined]
    assert back[20].values[0].value == -(1 << 63)  # type: ignore[attr-defined]
    assert back[13].variadic  # type: ignore[attr-defined]
    assert back.type_name(13) == "int (int, ...)"
    assert back.type_name(12) == "int *restrict"
    assert back.type_name(11) == "const volatile myint"
    assert back.type_name(15) == "int fn(int, ...)"
    assert back.sizeof(3) == 64 and back.alignof(3) == 4
    assert back.sizeof(11) == 4 and back.resolve(11) == 1
    assert back.alignof(4) == 4 and back.sizeof(2) == 8


def test_mutation_updates_name_index() -> None:
    spec = Spec.build(_all_kinds())
    t = spec.find("myint")
    t.name = "renamed"
    spec.reindex()
    assert spec.types_by_name("myint") == [] and spec.find("renamed") is t


def test_packed_alignment() -> None:
    spec = Spec.build([Int(4, BTF_INT_SIGNED, name="int"), Int(1, 0, name="char"),
                       Struct(5, [Member("c", 2, 0), Member("i", 1, 8)], name="packed")])
    assert spec.alignof(3) == 1 and spec.sizeof(3) == 5


def test_split_btf() -> None:
    base = Spec.from_bytes(Spec.build(_all_kinds()).to_bytes())
    split_types = [
        Pointer(4),                                         # 21 -> base struct s
        Struct(8, [Member("x", 1, 0), Member("p", 21, 64)], name="s"),  # 22 same name as base
        Typedef(22, name="split_only"),                     # 23
    ]
    split = Spec.build(split_types, base=base)
    assert split.first_id == len(base) == 21 and len(split) == 24
    blob = split.to_bytes()
    # split string offsets continue after the base's section
    parsed = Spec.from_bytes(blob, base=base)
    assert parsed == split
    assert parsed.base is base and parsed.string_base == len(base.strings)
    assert [t.id for t in parsed.types_by_name("s")] == [4, 22]
    assert parsed.find("split_only").id == 23
    assert parsed.type_name(21) == "struct s *"
    assert parsed[1].name == "int" and parsed.name_of(22) == "s"
    assert parsed.to_bytes() == blob
    # a name shared with the base reuses the base's string: only new names are stored
    assert b"split_only" in parsed.strings and b"\0s\0" not in parsed.strings
    with pytest.raises(BTFError):
        Spec.from_bytes(blob)  # without its base the ids/strings are out of range


# --------------------------------------------------------------------------- errors

def _hdr(t_len: int, s_len: int, *, magic: int = 0xEB9F, version: int = 1,
         hdr_len: int = 24) -> bytes:
    return struct.pack("<HBBIIIII", magic, version, 0, hdr_len, 0, t_len, t_len, s_len)


def _blob(types: bytes, strs: bytes = b"\0") -> bytes:
    return _hdr(len(types), len(strs)) + types + strs


def _int_type(name_off: int = 0) -> bytes:
    return struct.pack("<IIII", name_off, 1 << 24, 4, 32)


@pytest.mark.parametrize("blob, match", [
    (b"", "too short"),
    (_hdr(0, 1, magic=0x1234) + b"\0", "magic"),
    (_hdr(0, 1, version=2) + b"\0", "version"),
    (_hdr(0, 1, hdr_len=8) + b"\0", "header length"),
    (_hdr(0, 1, hdr_len=4096) + b"\0", "header length"),
    (_hdr(100, 1) + b"\0", "type section"),
    (_hdr(0, 50) + b"\0", "string section"),
    (_blob(b"", b"\0abc"), "NUL-terminated"),
    (_blob(b"", b"x\0"), "empty string"),
    (_blob(_int_type(99)), "string offset 99"),
    (_blob(_int_type()[:-2]), "truncated|past the end"),
    (_blob(struct.pack("<III", 0, 2 << 24, 5)), "type id 5"),          # PTR to id 5
    (_blob(struct.pack("<III", 0, (4 << 24) | 3, 4)), "runs past"),   # STRUCT vlen 3, no members
    (_blob(struct.pack("<III", 0, 25 << 24, 0)), "unknown kind 25"),
    (_blob(struct.pack("<III", 0, 0, 0)), "kind 0"),
    (_blob(struct.pack("<IIII", 0, 1 << 24, 4, 200)), "INT"),
    (_blob(struct.pack("<III", 0, (1 << 30) | (2 << 24), 0)), "reserved"),
])
def test_malformed_btf(blob: bytes, match: str) -> None:
    with pytest.raises(BTFError, match=match):
        Spec.from_bytes(blob)


def test_lookup_errors() -> None:
    spec = Spec.build([Int(4, name="int"), Typedef(1, name="int")])
    with pytest.raises(BTFError, match="2 BTF types"):
        spec.find("int")
    assert spec.find("int", Int).id == 1
    for bad in (-1, 3, 10**9):
        with pytest.raises(BTFError, match="out of range"):
            spec.type(bad)
    with pytest.raises(BTFError, match="no size"):
        spec.sizeof(0)


def test_cycles_are_bounded() -> None:
    # typedef 1 -> 2 -> 1, a struct containing itself through an array, const 5 -> 6 -> 5
    # and a pointer to itself
    spec = Spec.build([Typedef(2, name="a"), Typedef(1, name="b"),
                       Struct(4, [Member("m", 4, 0)], name="loop"), Array(3, 0, 1),
                       Const(6), Volatile(5), Pointer(7)])
    back = Spec.from_bytes(spec.to_bytes())
    for fn in (back.resolve, back.sizeof, back.alignof):
        with pytest.raises(BTFError, match="cycle"):
            fn(1)
    assert back.type_name(4) == "struct loop[1]"
    for tid in (5, 7):
        with pytest.raises(BTFError, match="cycle"):
            back.type_name(tid)
    assert back.type_name(1) == "a"
    with pytest.raises(BTFError, match="cycle"):
        back.alignof(3)
    assert back.sizeof(3) == 4  # a struct's size is recorded, no recursion


def test_encode_errors() -> None:
    spec = Spec.build([Int(4, name="int"), Struct(4, [Member("m", 1, 1 << 25, 3)], name="s")])
    with pytest.raises(BTFError, match="do not fit"):
        spec.to_bytes()
    spec = Spec.build([Pointer(-1)])
    with pytest.raises(BTFError, match="cannot encode"):
        spec.to_bytes()
    with pytest.raises(BTFError):
        Spec.build([Int(4, name="a\0b")]).to_bytes()


# --------------------------------------------------------------------------- .BTF.ext

def _ext(func: list[tuple[int, list[tuple[int, int]]]] | None = None,
         line: list[tuple[int, list[tuple[int, int, int, int]]]] | None = None,
         core: list[tuple[int, list[tuple[int, int, int, int]]]] | None = None, *,
         func_rec: int = 8, line_rec: int = 16, core_rec: int = 16,
         hdr_len: int = 32) -> bytes:
    def block(subs: list | None, rec: int) -> bytes:
        if subs is None:
            return b""
        out = struct.pack("<I", rec)
        for name_off, recs in subs:
            out += struct.pack("<II", name_off, len(recs))
            for r in recs:
                body = struct.pack(f"<{len(r)}I", *r)
                out += body + b"\xAA" * (rec - len(body))
        return out
    f, li, c = block(func, func_rec), block(line, line_rec), block(core, core_rec)
    hdr = struct.pack("<HBBIIIIII", 0xEB9F, 1, 0, hdr_len, 0, len(f), len(f), len(li),
                      len(f) + len(li))
    hdr += struct.pack("<I", len(c)) if hdr_len >= 32 else b""
    hdr = hdr[:hdr_len].ljust(hdr_len, b"\0")
    return hdr + f + li + c


def _ext_spec() -> Spec:
    # strings: "", "sec", "file.c", "x = 1;", "0:1"
    spec = Spec.build([Int(4, name="int"), FuncProto(1), Func(2, name="f")])
    for name in ("sec", "file.c", "x = 1;", "0:1"):
        spec.add(Typedef(1, name=name))
    return Spec.from_bytes(spec.to_bytes())


def _off(spec: Spec, s: str) -> int:
    return spec.strings.index(b"\0" + s.encode() + b"\0") + 1


def test_ext_synthetic_bigger_records_and_headers() -> None:
    spec = _ext_spec()
    sec, fil, txt, acc = (_off(spec, s) for s in ("sec", "file.c", "x = 1;", "0:1"))
    for hdr_len, rec_extra in ((32, 0), (40, 8), (32, 4)):
        blob = _ext([(sec, [(0, 3), (16, 3)])], [(sec, [(8, fil, txt, (12 << 10) | 5)])],
                    [(sec, [(24, 1, acc, 2)])], func_rec=8 + rec_extra,
                    line_rec=16 + rec_extra, core_rec=16 + rec_extra, hdr_len=hdr_len)
        ext = parse_btf_ext(blob, spec)
        assert [(f.insn_off, f.type_id, f.insn_idx) for f in ext.func_info["sec"]] == [
            (0, 3, 0), (16, 3, 2)]
        (li,) = ext.line_info["sec"]
        assert (li.file_name, li.line, li.column, li.line_text, li.insn_idx) == (
            "file.c", 12, 5, "x = 1;", 1)
        assert li.line_col == (12 << 10) | 5
        (cr,) = ext.core_relos["sec"]
        assert (cr.kind, cr.access_str, cr.insn_idx) == (CoreReloKind.FIELD_EXISTS, "0:1", 3)
        assert ext.func_info_rec_size == 8 + rec_extra
    # a header without the core_relo fields
    ext = parse_btf_ext(_ext([(sec, [(0, 3)])], hdr_len=24), spec)
    assert ext.core_relos == {} and len(ext.func_info["sec"]) == 1


@pytest.mark.parametrize("make, match", [
    (lambda o: b"\x00\x00" + _ext()[2:], "magic"),
    (lambda o: _ext()[:2] + b"\x02" + _ext()[3:], "version"),
    (lambda o: _ext(hdr_len=12), "header length"),
    (lambda o: _ext([(o, [(0, 3)])], func_rec=4), "record size"),
    (lambda o: _ext([(o, [(0, 3)])], func_rec=10), "record size"),
    (lambda o: _ext([(o, [])]), "no records"),
    (lambda o: _ext([(9999, [(0, 3)])]), "string offset"),
    (lambda o: _ext([(o, [(0, 99)])]), "out of range"),
    (lambda o: _ext(None, [(o, [(0, 9999, 0, 0)])]), "string offset"),
    (lambda o: _ext(None, None, [(o, [(0, 1, 4444, 0)])]), "access string"),
    (lambda o: _ext([(o, [(0, 3)])])[:-4], "past the end|claims"),
])
def test_malformed_ext(make, match: str) -> None:  # type: ignore[no-untyped-def]
    spec = _ext_spec()
    with pytest.raises(BTFError, match=match):
        parse_btf_ext(make(_off(spec, "sec")), spec)


def test_ext_claims_more_records_than_present() -> None:
    spec = _ext_spec()
    blob = bytearray(_ext([(_off(spec, "sec"), [(0, 3)])]))
    struct.pack_into("<I", blob, 32 + 4 + 4, 1000)  # num_info
    with pytest.raises(BTFError, match="claims 1000 records"):
        parse_btf_ext(bytes(blob), spec)


# --------------------------------------------------------------------------- fuzzing

def _exercise(spec: Spec) -> None:
    """Everything a consumer may do with a parsed spec: may only raise BTFError."""
    for tid in range(len(spec)):
        for fn in (spec.type_name, spec.sizeof, spec.alignof, spec.resolve, spec.name_of,
                   spec.kind_of):
            try:
                fn(tid)
            except BTFError:
                pass
        name = spec.name_of(tid)
        if name:
            assert tid in spec.ids_by_name(name)
    assert Spec.from_bytes(spec.to_bytes(), spec.base) == spec


def _parse_or_btferror(blob: bytes, base: Spec | None = None) -> Spec | None:
    try:
        spec = Spec.from_bytes(blob, base)
    except BTFError:
        return None
    _exercise(spec)
    return spec


FUZZ = settings(max_examples=int(os.environ.get("BPFKIT_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_btferror(data)
    _parse_or_btferror(_hdr(len(data), 1) + data + b"\0")  # valid header, random types
    try:
        parse_btf_ext(data, _ext_spec())
    except BTFError:
        pass


def test_truncation_at_every_length(obj: tuple[bytes, bytes, Path]) -> None:
    btf, ext = obj[0], obj[1]
    for n in range(len(btf)):
        assert _parse_or_btferror(btf[:n]) is None
    spec = Spec.from_bytes(btf)
    for n in range(len(ext)):
        try:
            parse_btf_ext(ext[:n], spec)
        except BTFError:
            pass


@FUZZ
@given(data=st.data())
def test_fuzz_corruption(obj: tuple[bytes, bytes, Path], data: st.DataObject) -> None:
    btf, ext = bytearray(obj[0]), bytearray(obj[1])
    for buf in (btf, ext):
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
    spec = _parse_or_btferror(bytes(btf))
    try:
        parse_btf_ext(bytes(ext), spec or Spec.from_bytes(obj[0]))
    except BTFError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzz_corrupt_split(data: st.DataObject) -> None:
    base = Spec.from_bytes(Spec.build(_all_kinds()).to_bytes())
    blob = bytearray(Spec.build([Pointer(4), Typedef(21, name="t"), Struct(
        8, [Member("x", 1, 0, 3)], name="s")], base=base).to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    _parse_or_btferror(bytes(blob), base)
