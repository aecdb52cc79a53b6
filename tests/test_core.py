"""CO-RE relocation (bpfkit.core): every relocation kind, against the running kernel's
BTF and against synthetic target BTF, and the relocated programs run in the kernel.

The BPF programs are tests/bpf/core_relo.bpf.c, compiled with clang and libbpf's
``bpf_core_read.h`` macros on our own ``preserve_access_index`` struct declarations.
"""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import build_bpf
from hypothesis import given, settings
from hypothesis import strategies as st

import bpfkit
from bpfkit import asm, core
from bpfkit._consts import ProgramType
from bpfkit.btf.ext import BTFExt, CoreRelo, CoreReloKind, parse_btf_ext
from bpfkit.btf.parse import Spec
from bpfkit.btf.types import (
    BTF_INT_SIGNED,
    Array,
    Enum,
    Enum64,
    EnumValue,
    Fwd,
    Int,
    Member,
    Pointer,
    Struct,
    Typedef,
    Union,
)
from bpfkit.elf import ElfFile
from bpfkit.errors import CoreRelocationError, VerifierError
from bpfkit.program import Program

K = CoreReloKind


# --------------------------------------------------------------------------- helpers
@dataclass
class Obj:
    path: Path
    local: Spec
    ext: BTFExt
    code: dict[str, bytes]

    def insns(self, sec: str) -> list[asm.Instruction]:
        return asm.decode(self.code[sec])

    def relocate(self, sec: str, target: Spec, **kw: object
                 ) -> tuple[list[asm.Instruction], list[core.CoreResult]]:
        insns = self.insns(sec)
        res = core.relocate(insns, self.ext.core_relos[sec], self.local, target,
                            sec.split("/")[-1], **kw)  # type: ignore[arg-type]
        return insns, res


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Obj:
    path = build_bpf("core_relo.bpf.c", out_dir=tmp_path_factory.mktemp("core"))
    with ElfFile.open(path) as elf:
        btf_sec = elf.section(".BTF")
        ext_sec = elf.section(".BTF.ext")
        assert btf_sec is not None and ext_sec is not None
        local = Spec.from_bytes(btf_sec.data())
        ext = parse_btf_ext(ext_sec.data(), local)
        code = {}
        for name in ext.core_relos:
            sec = elf.section(name)
            assert sec is not None
            code[name] = sec.data()
    return Obj(path, local, ext, code)


@pytest.fixture(scope="module")
def kernel() -> Spec:
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("kernel has no BTF (/sys/kernel/btf/vmlinux missing: CONFIG_DEBUG_INFO_BTF)")
    return Spec.kernel()


def one(results: list[core.CoreResult], kind: CoreReloKind, path: str) -> core.CoreResult:
    hits = [r for r in results if r.kind == kind and r.field_path == path]
    assert len(hits) == 1, (kind, path, [str(r) for r in results])
    return hits[0]


def insn_value(insn: asm.Instruction) -> int:
    if insn.cls in (asm.BPF_LDX, asm.BPF_ST, asm.BPF_STX):
        return insn.off
    return insn.imm


def member_offset(spec: Spec, struct_name: str, member: str) -> int:
    t = spec.find(struct_name, Struct)
    return t.member(member).bit_offset // 8


def in_root_pidns() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return len(line.split()) == 2
    except OSError:
        pass
    return True


def load(insns: list[asm.Instruction], name: str) -> Program:
    return Program.load(ProgramType.RAW_TRACEPOINT, insns, license="GPL", name=name)


def run(prog: Program, ctx: bytes = bytes(8)) -> int:
    return prog.test_run(context=ctx).retval


def s32(v: int) -> int:
    return ctypes.c_int32(v).value


# --------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize("name,ess", [
    ("task_struct___mine", "task_struct"), ("task_struct", "task_struct"),
    ("foo___a___b", "foo___a"), ("foo____bar", "foo____bar"), ("___foo", "___foo"),
    ("foo___", "foo___"), ("a___b", "a"), ("", ""), ("x_____", "x_____"),
])
def test_essential_name(name: str, ess: str) -> None:
    assert core.essential_name(name) == ess


def test_poison_constant() -> None:
    assert core.poisoned_call_id == core.POISONED_CALL_ID == 195896080 == 0xBAD2310


def test_poison_slot_from_log_and_explain() -> None:
    log = ("0: R1=ctx() R10=fp0\n0: (85) call bpf_get_current_task#35 ; R0_w=scalar()\n"
           "1: (85) call unknown#195896080\ninvalid func unknown#195896080\n"
           "processed 2 insns (limit 1000000)\n")
    assert core.poison_slot_from_log(log) == 1
    assert core.poison_slot_from_log("0: (95) exit\nR0 !read_ok\n") is None
    r = core.CoreResult(1, K.FIELD_BYTE_OFFSET, "t___x", "t___x.a.b", 4, None, True,
                        "the target's struct t has no field a.b", slot=1, program="prog")
    ok = core.CoreResult(0, K.FIELD_EXISTS, "t___x", "t___x.c", 1, 1, slot=0, program="prog")
    msg = core.explain_poison(1, [ok, r])
    assert msg == ("CO-RE relocation failed for t___x.a.b in prog: the target's struct t has "
                   "no field a.b")
    assert core.explain_poison(0, [ok, r]) == ""
    wide = core.CoreResult(3, K.ENUMVAL_VALUE, "e", "e::V", 1, None, True, "gone", slot=5,
                           program="p", slots=2)
    assert core.explain_poison(6, [wide]).startswith("CO-RE relocation failed for e::V in p")


# --------------------------------------------------------------------------- kernel BTF
def test_task_struct_offsets_match_kernel(obj: Obj, kernel: Spec) -> None:
    insns, res = obj.relocate("raw_tp/tgid", kernel)
    r = one(res, K.FIELD_BYTE_OFFSET, "task_struct___mine.tgid")
    assert r.old_value == 4 and not r.poisoned
    assert r.new_value == member_offset(kernel, "task_struct", "tgid")
    assert insn_value(insns[r.insn_index]) == r.new_value
    assert r.type_name == "task_struct___mine" and r.program == "tgid"
    assert r.target_type_id == kernel.ids_by_name("task_struct", Struct)[0]
    assert insns[r.insn_index].meta["core"] is r

    insns, res = obj.relocate("raw_tp/ppid", kernel)
    rp = one(res, K.FIELD_BYTE_OFFSET, "task_struct___mine.real_parent")
    assert rp.new_value == member_offset(kernel, "task_struct", "real_parent")
    assert insn_value(insns[rp.insn_index]) == rp.new_value


def test_all_kinds_against_kernel(obj: Obj, kernel: Spec) -> None:
    insns, res = obj.relocate("raw_tp/kernel_kinds", kernel)
    task = kernel.find("task_struct", Struct)
    mine = obj.local.find("task_struct___mine", Struct)
    xdp = kernel.find("bpf_prog_type", Enum).value_of("BPF_PROG_TYPE_XDP")
    want = {
        (K.FIELD_EXISTS, "task_struct___mine.pid"): 1,
        (K.FIELD_BYTE_SIZE, "task_struct___mine.real_parent"): 8,
        (K.FIELD_BYTE_OFFSET, "task_struct___mine.pid"): task.member("pid").bit_offset // 8,
        (K.TYPE_ID_LOCAL, "task_struct___mine"): mine.id,
        (K.TYPE_ID_TARGET, "task_struct___mine"): task.id,
        (K.TYPE_SIZE, "task_struct___mine"): task.size,
        (K.TYPE_EXISTS, "no_such_type_in_kernel___x"): 0,
        (K.TYPE_MATCHES, "task_struct___badmatch"): 0,   # long pid vs pid_t (int)
        (K.ENUMVAL_EXISTS, "bpf_prog_type___mine::BPF_PROG_TYPE_NOPE___mine"): 0,
        (K.ENUMVAL_VALUE, "bpf_prog_type___mine::BPF_PROG_TYPE_XDP___mine"): xdp,
    }
    for (kind, path), value in want.items():
        r = one(res, kind, path)
        assert not r.poisoned, r
        assert r.new_value == value, r
        assert insn_value(insns[r.insn_index]) == value, r
    exists = [r for r in res if r.kind == K.TYPE_EXISTS and r.type_name == "task_struct___mine"]
    assert [r.new_value for r in exists] == [1]
    matches = one(res, K.TYPE_MATCHES, "task_struct___mine")
    assert matches.new_value == 1   # pid/tgid ints, real_parent a struct pointer
    present = one(res, K.ENUMVAL_EXISTS, "bpf_prog_type___mine::BPF_PROG_TYPE_XDP___mine")
    assert present.new_value == 1
    # The relocated program is valid: the verifier accepts it and it returns the sum.
    if os.geteuid() != 0:
        pytest.skip("loading needs root")
    with load(insns, "kernel_kinds") as prog:
        assert run(prog) == sum(r.new_value or 0 for r in res) & 0xFFFFFFFF


@pytest.mark.requires_root
def test_end_to_end_current_task_pid(obj: Obj, kernel: Spec) -> None:
    """BPF_CORE_READ(task, tgid) from bpf_get_current_task() returns our pid."""
    if not in_root_pidns():
        pytest.skip("running in a pid namespace: the kernel's tgid differs from os.getpid()")
    insns, _ = obj.relocate("raw_tp/tgid", kernel)
    with load(insns, "read_tgid") as prog:
        assert run(prog) == os.getpid()
    insns, _ = obj.relocate("raw_tp/ppid", kernel)
    with load(insns, "read_ppid") as prog:
        assert run(prog) == os.getppid()


@pytest.mark.requires_root
def test_guarded_missing_field_loads(obj: Obj, kernel: Spec) -> None:
    """A poisoned read behind bpf_core_field_exists() is dead code: the program loads."""
    insns, res = obj.relocate("raw_tp/guarded", kernel)
    ex = one(res, K.FIELD_EXISTS, "task_struct___missing.no_such_field_in_kernel")
    assert (ex.old_value, ex.new_value, ex.poisoned) == (1, 0, False)
    off = one(res, K.FIELD_BYTE_OFFSET, "task_struct___missing.no_such_field_in_kernel")
    assert off.poisoned and off.new_value is None
    assert "task_struct" in off.reason and "no_such_field_in_kernel" in off.reason
    p = insns[off.insn_index]
    assert (p.opcode, p.src, p.imm) == (asm.CALL, 0, core.POISONED_CALL_ID)
    with load(insns, "guarded") as prog:
        assert run(prog) == 42


@pytest.mark.requires_root
def test_reachable_poison_is_explained(obj: Obj, kernel: Spec) -> None:
    insns, res = obj.relocate("raw_tp/unguarded", kernel)
    with pytest.raises(VerifierError) as ei:
        load(insns, "unguarded")
    slot = core.poison_slot_from_log(ei.value.log)
    assert slot is not None
    msg = core.explain_poison(slot, res)
    assert msg.startswith("CO-RE relocation failed for "
                          "task_struct___missing.no_such_field_in_kernel in unguarded: ")
    assert "task_struct" in msg


def test_kernel_relocation_is_fast(obj: Obj, kernel: Spec) -> None:
    kernel.ids_by_name("task_struct")  # the index exists once the Spec is loaded
    obj.relocate("raw_tp/tgid", kernel)  # warm the flavour index
    t0 = time.perf_counter()
    obj.relocate("raw_tp/ppid", kernel)
    cold_per_call = time.perf_counter() - t0
    cache: dict[int, list[int]] = {}
    obj.relocate("raw_tp/tgid", kernel, cand_cache=cache)
    t0 = time.perf_counter()
    obj.relocate("raw_tp/ppid", kernel, cand_cache=cache)
    shared = time.perf_counter() - t0
    assert cold_per_call < 0.05, f"relocating a task_struct read took {cold_per_call * 1e3:.1f} ms"
    assert shared < 0.02, f"with a shared candidate cache it took {shared * 1e3:.1f} ms"
    assert cache  # the programs of one object share candidate look-ups


@pytest.mark.requires_root
def test_loader_end_to_end(obj: Obj, kernel: Spec) -> None:
    """Through bpfkit.load: CO-RE against the kernel, and a reachable poison explained."""
    if not in_root_pidns():
        pytest.skip("running in a pid namespace: the kernel's tgid differs from os.getpid()")
    with bpfkit.load(obj.path, autoload=["read_tgid", "read_ppid", "guarded",
                                         "kernel_kinds"]) as coll:
        assert run(coll.programs["read_tgid"]) == os.getpid()
        assert run(coll.programs["read_ppid"]) == os.getppid()
        assert run(coll.programs["guarded"]) == 42
    with pytest.raises(VerifierError) as ei:
        bpfkit.load(obj.path, autoload=["unguarded"])
    assert ("CO-RE relocation failed for task_struct___missing.no_such_field_in_kernel in "
            "unguarded") in str(ei.value)


@pytest.mark.requires_root
def test_loader_with_target_btf(obj: Obj) -> None:
    """bpfkit.load(btf=...) relocates against a BTF that is not the kernel's."""
    names = ["bits_a", "bits_b", "bits_c", "bits_d", "bits_arr"]
    with bpfkit.load(obj.path, btf=bits_target(), autoload=names) as coll:
        got = {n: run(coll.programs[n], bits_ctx()) for n in names}
    assert got == {"bits_a": BITS["a"], "bits_b": BITS["b"] & 0xFFFFFFFF,
                   "bits_c": (BITS["c"] >> 8) & 0xFFFFFFFF, "bits_d": BITS["d"],
                   "bits_arr": ARR[2]}


# --------------------------------------------------------------------------- synthetic: bitfields
def bits_target() -> Spec:
    """struct bits with every field moved, resized or nested differently."""
    s = Spec()
    u8 = s.add(Int(1, 0, name="unsigned char"))
    u32 = s.add(Int(4, 0, name="unsigned int"))
    s32 = s.add(Int(4, BTF_INT_SIGNED, name="int"))
    u64 = s.add(Int(8, 0, name="unsigned long long"))
    s64 = s.add(Int(8, BTF_INT_SIGNED, name="long"))
    arr = s.add(Array(s32, s32, 8))
    anon = s.add(Struct(8, [Member("d", u32, 0), Member("pad2", u32, 32)]))
    s.add(Struct(64, [
        Member("pad", u32, 0),
        Member("b", s32, 39, 5),
        Member("a", u8, 46, 3),       # straddles bytes: the load must grow to 4 bytes
        Member("c", u64, 68, 40),
        Member("", anon, 128),        # d is now inside an anonymous struct
        Member("e", s64, 192),        # int -> long: a signed field changed size
        Member("arr", arr, 256),
    ], name="bits"))
    return s


BITS: dict[str, int] = dict(a=5, b=-7, c=0xAB_CDEF_1234, d=0x12345, e=-2)
ARR = [100 + i for i in range(8)]


def bits_ctx() -> bytes:
    """The 64-byte context laid out as bits_target() says."""
    v = (BITS["a"] & 7) << 46 | (BITS["b"] & 31) << 39 | (BITS["c"] & (1 << 40) - 1) << 68
    v |= BITS["d"] << 128 | (BITS["e"] & (1 << 64) - 1) << 192
    for i, x in enumerate(ARR):
        v |= x << (256 + 32 * i)
    return v.to_bytes(64, "little")


@pytest.mark.parametrize("field,off,size,lshift,rshift,signed", [
    ("a", 4, 4, 47, 61, 0),
    ("b", 4, 4, 52, 59, 1),
    ("c", 8, 8, 20, 24, 0),
])
def test_bitfield_values(obj: Obj, field: str, off: int, size: int, lshift: int, rshift: int,
                         signed: int) -> None:
    _, res = obj.relocate(f"raw_tp/bits_{field}", bits_target())
    path = f"bits.{field}"
    assert one(res, K.FIELD_BYTE_OFFSET, path).new_value == off
    assert one(res, K.FIELD_BYTE_SIZE, path).new_value == size
    assert one(res, K.FIELD_LSHIFT_U64, path).new_value == lshift
    assert one(res, K.FIELD_SIGNED, path).new_value == signed
    assert {r.new_value for r in res if r.kind == K.FIELD_RSHIFT_U64} == {rshift}


def test_field_resize_and_nesting(obj: Obj) -> None:
    insns, res = obj.relocate("raw_tp/bits_d", bits_target())
    r = one(res, K.FIELD_BYTE_OFFSET, "bits.d")
    ld = insns[r.insn_index]
    assert (r.old_value, r.new_value) == (12, 16)   # through the anonymous struct
    assert ld.ldst_size == asm.BPF_W                # u16 -> u32: unsigned, so resized
    insns, res = obj.relocate("raw_tp/bits_arr", bits_target())
    r = one(res, K.FIELD_BYTE_OFFSET, "bits.arr[2]")
    assert (r.old_value, r.new_value) == (24, 40)
    assert insns[r.insn_index].ldst_size == asm.BPF_W
    insns, res = obj.relocate("raw_tp/bits_e", bits_target())
    r = one(res, K.FIELD_BYTE_OFFSET, "bits.e")
    assert r.poisoned and "size changed from 4 to 8" in r.reason
    assert insns[r.insn_index].imm == core.POISONED_CALL_ID


@pytest.mark.requires_root
def test_bitfield_programs_run(obj: Obj) -> None:
    """Relocated against a different layout, the programs read the right values."""
    ctx = bits_ctx()
    expect = {"a": BITS["a"], "b": BITS["b"], "c": (BITS["c"] >> 8) & 0xFFFFFFFF,
              "d": BITS["d"], "arr": ARR[2]}
    for field, value in expect.items():
        insns, _ = obj.relocate(f"raw_tp/bits_{field}", bits_target())
        with load(insns, f"bits_{field}") as prog:
            got = run(prog, ctx)
        assert (s32(got) if field == "b" else got) == value, field
    insns, res = obj.relocate("raw_tp/bits_e", bits_target())
    with pytest.raises(VerifierError) as ei:
        load(insns, "bits_e")
    slot = core.poison_slot_from_log(ei.value.log)
    assert slot is not None
    assert "bits.e in bits_e: field size changed" in core.explain_poison(slot, res)


# --------------------------------------------------------------------------- synthetic: candidates
def amb_target(*layouts: tuple[str, list[tuple[str, int]]], g_struct: str | None = None
               ) -> Spec:
    s = Spec()
    i32 = s.add(Int(4, BTF_INT_SIGNED, name="int"))
    for name, members in layouts:
        ms = []
        for mname, off in members:
            t = i32
            if mname == g_struct:
                t = s.add(Struct(4, [Member("x", i32, 0)], name="inner"))
            ms.append(Member(mname, t, off * 8))
        s.add(Struct(16, ms, name=name))
    return s


def test_flavoured_candidates_agreeing(obj: Obj) -> None:
    target = amb_target(("amb", [("f", 0), ("g", 8)]), ("amb___v2", [("g", 8), ("f", 4)]))
    insns, res = obj.relocate("raw_tp/amb", target)
    r = one(res, K.FIELD_BYTE_OFFSET, "amb___local.g")
    assert (r.old_value, r.new_value) == (4, 8)
    assert insns[0].imm == 8


def test_flavour_only_in_target(obj: Obj) -> None:
    _, res = obj.relocate("raw_tp/amb", amb_target(("amb___new", [("g", 12)])))
    assert one(res, K.FIELD_BYTE_OFFSET, "amb___local.g").new_value == 12


def test_ambiguous_candidates_fail(obj: Obj) -> None:
    target = amb_target(("amb", [("g", 4)]), ("amb___v2", [("g", 8)]))
    with pytest.raises(CoreRelocationError) as ei:
        obj.relocate("raw_tp/amb", target)
    msg = str(ei.value)
    assert "'amb'" in msg and "instruction 0" in msg and "amb___local.g" in msg
    assert "ambiguous" in msg and "4 vs 8" in msg


def test_incompatible_candidate_skipped(obj: Obj) -> None:
    # amb.g is a struct, incompatible with the local int: no match, so poisoned...
    s = amb_target(("amb", [("g", 4)]), g_struct="g")
    _, res = obj.relocate("raw_tp/amb", s)
    r = one(res, K.FIELD_BYTE_OFFSET, "amb___local.g")
    assert r.poisoned and "no field g of a compatible type" in r.reason
    # ...and with a second flavour whose g is an int, only that one counts.
    target = Spec()
    i32 = target.add(Int(4, BTF_INT_SIGNED, name="int"))
    inner = target.add(Struct(4, [Member("x", i32, 0)], name="inner"))
    target.add(Struct(8, [Member("g", inner, 0)], name="amb"))
    target.add(Struct(16, [Member("g", i32, 64)], name="amb___v2"))
    _, res = obj.relocate("raw_tp/amb", target)
    assert one(res, K.FIELD_BYTE_OFFSET, "amb___local.g").new_value == 8


def test_candidate_cache_is_pruned(obj: Obj) -> None:
    target = amb_target(("amb", [("f", 0)]), ("amb___v2", [("g", 8)]))
    cache: dict[int, list[int]] = {}
    _, res = obj.relocate("raw_tp/amb", target, cand_cache=cache)
    assert one(res, K.FIELD_BYTE_OFFSET, "amb___local.g").new_value == 8
    assert list(cache.values()) == [[target.ids_by_name("amb___v2")[0]]]


def test_flexible_array(obj: Obj) -> None:
    s = Spec()
    i32 = s.add(Int(4, BTF_INT_SIGNED, name="int"))
    i64 = s.add(Int(8, BTF_INT_SIGNED, name="long"))
    flex = s.add(Array(i32, i32, 0))
    s.add(Struct(8, [Member("n", i64, 0), Member("data", flex, 64)], name="flex"))
    insns, res = obj.relocate("raw_tp/flex", s)
    r = one(res, K.FIELD_BYTE_OFFSET, "flex___local.data[5]")
    assert (r.old_value, r.new_value) == (24, 28)
    assert insns[0].imm == 28
    # A short fixed array (not last, so not flexible) cannot hold index 5: poisoned.
    s = Spec()
    i32 = s.add(Int(4, BTF_INT_SIGNED, name="int"))
    arr = s.add(Array(i32, i32, 3))
    s.add(Struct(16, [Member("n", i32, 0), Member("data", arr, 32)], name="flex"))
    _, res = obj.relocate("raw_tp/flex", s)
    assert one(res, K.FIELD_BYTE_OFFSET, "flex___local.data[5]").poisoned


# --------------------------------------------------------------------------- synthetic: enums, types
def test_enum_values_and_ld_imm64_poison(obj: Obj) -> None:
    s = Spec()
    s.add(Enum(4, False, [EnumValue("RED", 10), EnumValue("GREEN", 20)], name="color"))
    before = obj.insns("raw_tp/enums")
    insns, res = obj.relocate("raw_tp/enums", s)
    assert one(res, K.ENUMVAL_EXISTS, "color___local::GREEN___local").new_value == 1
    assert one(res, K.ENUMVAL_EXISTS, "color___local::BLUE").new_value == 0
    green = one(res, K.ENUMVAL_VALUE, "color___local::GREEN___local")
    assert (green.old_value, green.new_value) == (1, 20)
    assert insns[green.insn_index].is_ld_imm64 and insns[green.insn_index].imm == 20
    blue = one(res, K.ENUMVAL_VALUE, "color___local::BLUE")
    assert blue.poisoned and blue.slots == 2 and "no enumerator BLUE" in blue.reason
    # libbpf's poisoning: both slots of the ld_imm64 become `call 0xbad2310`.
    assert len(insns) == len(before) + 1
    a, b = insns[blue.insn_index], insns[blue.insn_index + 1]
    assert a.is_call and b.is_call and a.imm == b.imm == core.POISONED_CALL_ID
    assert len(asm.encode(insns)) == len(asm.encode(before))
    assert asm.slot_offsets(insns)[blue.insn_index] == blue.slot
    for r in res:  # every result still points at its instruction
        assert insns[r.insn_index].meta["core"] is r


def test_enum64_target(obj: Obj) -> None:
    s = Spec()
    s.add(Enum64(8, False, [EnumValue("GREEN", 1 << 40), EnumValue("BLUE", 3)],
                 name="color___big"))
    insns, res = obj.relocate("raw_tp/enums", s)
    green = one(res, K.ENUMVAL_VALUE, "color___local::GREEN___local")
    assert green.new_value == 1 << 40 and insns[green.insn_index].imm == 1 << 40
    assert one(res, K.ENUMVAL_VALUE, "color___local::BLUE").new_value == 3


def tm_target(x_type: str = "int", next_fwd: bool = False, extra: bool = True) -> Spec:
    s = Spec()
    i32 = s.add(Int(4, BTF_INT_SIGNED, name="int"))
    i64 = s.add(Int(8, BTF_INT_SIGNED, name="long"))
    u64 = s.add(Int(8, 0, name="unsigned long"))
    fwd = s.add(Fwd(False, name="tm"))
    ptr = s.add(Pointer(0))
    ulong_t = s.add(Typedef(u64, name="ulong_t"))
    ms = [Member("extra", i32, 0)] if extra else []
    ms += [Member("x", i32 if x_type == "int" else i64, 64),
           Member("y", ulong_t, 128), Member("next", ptr, 192)]
    tid = s.add(Struct(32, ms, name="tm"))
    s.type(ptr).type = fwd if next_fwd else tid  # type: ignore[attr-defined]
    return s


@pytest.mark.parametrize("x_type,next_fwd,matches", [
    ("int", False, 1), ("int", True, 1), ("long", False, 0)])
def test_type_kinds(obj: Obj, x_type: str, next_fwd: bool, matches: int) -> None:
    target = tm_target(x_type, next_fwd)
    insns, res = obj.relocate("raw_tp/types", target)
    tm = target.find("tm", Struct)
    assert one(res, K.TYPE_EXISTS, "tm___local").new_value == 1
    assert one(res, K.TYPE_SIZE, "tm___local").new_value == 32
    assert one(res, K.TYPE_MATCHES, "tm___local").new_value == matches
    assert one(res, K.TYPE_ID_TARGET, "tm___local").new_value == tm.id
    local_id = obj.local.find("tm___local", Struct).id
    loc = one(res, K.TYPE_ID_LOCAL, "tm___local")
    assert loc.old_value == loc.new_value == local_id
    for r in res:
        assert insn_value(insns[r.insn_index]) == r.new_value


def test_type_kinds_missing_type(obj: Obj) -> None:
    s = Spec()
    s.add(Int(4, BTF_INT_SIGNED, name="int"))
    s.add(Union(4, [], name="tm"))   # same name, other kind: not a candidate
    _, res = obj.relocate("raw_tp/types", s)
    for kind in (K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_MATCHES, K.TYPE_ID_TARGET):
        r = one(res, kind, "tm___local")
        assert r.new_value == 0 and not r.poisoned


def test_types_match_rules() -> None:
    def spec(*types: object) -> Spec:
        s = Spec()
        for t in types:
            s.add(t)  # type: ignore[arg-type]
        return s
    e32 = spec(Enum(4, False, [EnumValue("A", 1), EnumValue("B", 2)], name="e"))
    e64 = spec(Enum64(8, False, [EnumValue("A", 1), EnumValue("B", 2)], name="e"))
    e32b = spec(Enum(4, False, [EnumValue("B", 9), EnumValue("A", 7), EnumValue("C", 1)],
                     name="e___x"))
    assert not core.types_match(e32, 1, e64, 1)          # sizes differ
    assert core.types_match(e32, 1, e32b, 1)             # names matter, values do not
    assert not core.types_match(e32b, 1, e32, 1)         # C missing in the target
    assert core.types_are_compat(e32, 1, e64, 1)         # enum ~ enum64 for compat
    a4 = spec(Int(4, 0, name="int"), Array(1, 1, 4))
    a5 = spec(Int(4, 0, name="int"), Array(1, 1, 5))
    assert not core.types_match(a4, 2, a5, 2) and core.types_are_compat(a4, 2, a5, 2)
    signed = spec(Int(4, BTF_INT_SIGNED, name="int"))
    assert not core.types_match(a4, 1, signed, 1) and core.types_are_compat(a4, 1, signed, 1)
    # A union behind a pointer does not match a struct forward declaration.
    pu = spec(Union(4, [], name="u"), Pointer(1))
    pf = spec(Fwd(False, name="u"), Pointer(1))
    pfu = spec(Fwd(True, name="u"), Pointer(1))
    assert not core.types_match(pu, 2, pf, 2) and core.types_match(pu, 2, pfu, 2)


# --------------------------------------------------------------------------- errors
def test_instruction_value_mismatch_is_an_error(obj: Obj) -> None:
    target = amb_target(("amb", [("g", 8)]))
    insns = obj.insns("raw_tp/amb")
    insns[0].imm = 99
    with pytest.raises(CoreRelocationError) as ei:
        core.relocate(insns, obj.ext.core_relos["raw_tp/amb"], obj.local, target, "amb")
    msg = str(ei.value)
    assert "program 'amb'" in msg and "instruction 0" in msg and "amb___local.g" in msg
    assert "holds 99" in msg


def _mini() -> tuple[Spec, Spec]:
    local = Spec()
    i32 = local.add(Int(4, BTF_INT_SIGNED, name="int"))
    local.add(Struct(8, [Member("a", i32, 0), Member("b", i32, 32)], name="s___l"))
    local.add(Struct(4, [Member("a", i32, 0)]))   # anonymous
    target = Spec()
    t32 = target.add(Int(4, BTF_INT_SIGNED, name="int"))
    target.add(Struct(12, [Member("b", t32, 64)], name="s"))
    return local, target


@pytest.mark.parametrize("relo,insns,err", [
    (CoreRelo(0, 2, "0:7", K.FIELD_BYTE_OFFSET), [asm.mov64_imm(0, 0)], "member index 7"),
    (CoreRelo(0, 2, "0:x", K.FIELD_BYTE_OFFSET), [asm.mov64_imm(0, 0)], "malformed access"),
    (CoreRelo(0, 2, "0:1", K.TYPE_SIZE), [asm.mov64_imm(0, 8)], "access string '0:1'"),
    (CoreRelo(4, 2, "0:1", K.FIELD_BYTE_OFFSET), [asm.mov64_imm(0, 4)], "multiple of 8"),
    (CoreRelo(8, 2, "0:1", K.FIELD_BYTE_OFFSET), [asm.ld_imm64(0, 4)], "inside an ld_imm64"),
    (CoreRelo(16, 2, "0:1", K.FIELD_BYTE_OFFSET), [asm.mov64_imm(0, 4)], "past the end"),
    (CoreRelo(0, 3, "0:0", K.FIELD_BYTE_OFFSET), [asm.mov64_imm(0, 0)], "anonymous"),
    (CoreRelo(0, 2, "0:1", 99), [asm.mov64_imm(0, 4)], "unknown CO-RE relocation kind 99"),
    (CoreRelo(0, 2, "0:1", K.FIELD_BYTE_OFFSET), [asm.alu64_reg(asm.BPF_ADD, 0, 1)],
     "register source"),
    (CoreRelo(0, 2, "0:1", K.FIELD_BYTE_OFFSET), [asm.exit()], "cannot relocate"),
    (CoreRelo(0, 1, "0", K.ENUMVAL_VALUE), [asm.mov64_imm(0, 0)], "not an enum"),
])
def test_bad_records(relo: CoreRelo, insns: list[asm.Instruction], err: str) -> None:
    local, target = _mini()
    with pytest.raises(CoreRelocationError, match="program 'p'") as ei:
        core.relocate(insns, [relo], local, target, "p")
    assert err in str(ei.value)


def test_hand_built_relocations() -> None:
    """Field offset through an ALU imm, a load and a store, and a missing field."""
    local, target = _mini()
    insns = [asm.mov64_imm(1, 4), asm.ldx_mem(asm.BPF_W, 0, 1, 4),
             asm.st_mem(asm.BPF_W, 1, 4, 0), asm.mov64_imm(2, 1), asm.exit()]
    relos = [CoreRelo(0, 2, "0:1", K.FIELD_BYTE_OFFSET),
             CoreRelo(8, 2, "0:1", K.FIELD_BYTE_OFFSET),
             CoreRelo(16, 2, "0:1", K.FIELD_BYTE_OFFSET),
             CoreRelo(24, 2, "0:0", K.FIELD_EXISTS)]
    res = core.relocate(insns, relos, local, target, "p")
    assert [r.new_value for r in res] == [8, 8, 8, 0]
    assert (insns[0].imm, insns[1].off, insns[2].off, insns[3].imm) == (8, 8, 8, 0)
    assert [r.field_path for r in res] == ["s___l.b"] * 3 + ["s___l.a"]


@settings(max_examples=300, deadline=None)
@given(type_id=st.integers(0, 6), access=st.lists(st.integers(0, 70), min_size=0, max_size=5),
       kind=st.integers(-1, 14), off=st.integers(0, 3), imm=st.integers(0, 70))
def test_fuzz_records_fail_cleanly(type_id: int, access: list[int], kind: int, off: int,
                                   imm: int) -> None:
    """Any record either applies or raises CoreRelocationError, nothing else."""
    local, target = _mini()
    local.add(Array(1, 1, 0))
    local.add(Enum(4, True, [EnumValue("A", -1)], name="e"))
    insns = [asm.mov64_imm(0, imm), asm.ld_imm64(1, imm), asm.ldx_mem(asm.BPF_W, 0, 1, imm),
             asm.exit()]
    relo = CoreRelo(off * 8, type_id, ":".join(map(str, access)), kind)
    try:
        core.relocate(insns, [relo], local, target, "fuzz")
    except CoreRelocationError:
        pass
