"""The object loader: SEC() table, pure ELF -> spec parsing, and loading into the kernel."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpfkit
from bpfkit import asm
from bpfkit import syscall as sc
from bpfkit._consts import BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, AttachType, MapType, ProgramType
from bpfkit.errors import BpfkitError, LoadError, NotFound, SpecError, VerifierError
from bpfkit.host.version import kernel_version_code
from bpfkit.loader._kconfig import kconfig_value
from bpfkit.sections import SECTION_DEFS, SecFlag, parse_section
from bpfkit.spec import CollectionSpec

BPF_FS = "/sys/fs/bpf"


# ----------------------------------------------------------------------------- sections

def test_every_section_def_parses_its_own_examples() -> None:
    for d in SECTION_DEFS:
        names = []
        if d.prefix.endswith("+"):
            names = [d.base, d.base + "/some/target"]
        elif d.prefix.endswith("/"):
            names = [d.prefix + "target"]
        else:
            names = [d.prefix]
        for n in names:
            try:
                info = parse_section(n)
            except SpecError as e:  # attach types newer than this kernel's UAPI
                assert "does not define" in str(e), n
                continue
            # the first matching entry may be an earlier, more specific one
            assert info.definition.matches(n)
            if info.definition is d:
                assert info.prog_type == d.prog_type
                assert info.sleepable == bool(d.flags & SecFlag.SLEEPABLE)
                if d.expected_attach_type:
                    assert info.expected_attach_type == AttachType[d.expected_attach_type]


@pytest.mark.parametrize("name,pt,at,target,auto", [
    ("tp/syscalls/sys_enter_getpid", ProgramType.TRACEPOINT, 0, "syscalls/sys_enter_getpid",
     "tracepoint"),
    ("tracepoint/sched/sched_switch", ProgramType.TRACEPOINT, 0, "sched/sched_switch",
     "tracepoint"),
    ("uprobe//usr/bin/bash:readline", ProgramType.KPROBE, 0, "/usr/bin/bash:readline", "uprobe"),
    ("uretprobe.s/libc.so.6:malloc", ProgramType.KPROBE, 0, "libc.so.6:malloc", "uprobe"),
    ("raw_tp/sys_enter", ProgramType.RAW_TRACEPOINT, 0, "sys_enter", "raw_tp"),
    ("raw_tp.w/foo", ProgramType.RAW_TRACEPOINT_WRITABLE, 0, "foo", "raw_tp"),
    ("tp_btf/sched_switch", ProgramType.TRACING, AttachType.TRACE_RAW_TP, "sched_switch", "trace"),
    ("iter/task", ProgramType.TRACING, AttachType.TRACE_ITER, "task", "iter"),
    ("iter.s/task", ProgramType.TRACING, AttachType.TRACE_ITER, "task", "iter"),
    ("lsm/file_open", ProgramType.LSM, AttachType.LSM_MAC, "file_open", "lsm"),
    ("kprobe.multi/tcp_*", ProgramType.KPROBE, AttachType.TRACE_KPROBE_MULTI, "tcp_*",
     "kprobe_multi"),
    ("usdt/python:function__entry", ProgramType.KPROBE, 0, "python:function__entry", "usdt"),
    ("xdp", ProgramType.XDP, AttachType.XDP, "", None),
    ("xdp.frags", ProgramType.XDP, AttachType.XDP, "", None),
    ("xdp/devmap", ProgramType.XDP, AttachType.XDP_DEVMAP, "", None),
    ("tc", ProgramType.SCHED_CLS, 0, "", None),
    ("tcx/ingress", ProgramType.SCHED_CLS, AttachType.TCX_INGRESS, "", None),
    ("tc/egress", ProgramType.SCHED_CLS, AttachType.TCX_EGRESS, "", None),
    ("cgroup/connect4", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT, "", None),
    ("cgroup_skb/egress", ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS, "", None),
    ("sk_reuseport/migrate", ProgramType.SK_REUSEPORT,
     AttachType.SK_REUSEPORT_SELECT_OR_MIGRATE, "", None),
    ("sk_reuseport", ProgramType.SK_REUSEPORT, AttachType.SK_REUSEPORT_SELECT, "", None),
    ("syscall", ProgramType.SYSCALL, 0, "", None),
    ("socket", ProgramType.SOCKET_FILTER, 0, "", None),
    ("struct_ops/cong_avoid", ProgramType.STRUCT_OPS, 0, "cong_avoid", None),
])
def test_parse_section(name: str, pt: ProgramType, at: int, target: str, auto: str | None) -> None:
    info = parse_section(name)
    assert info.prog_type == pt
    assert info.expected_attach_type == at
    assert info.attach_target == target
    assert info.auto_attach == auto


def test_section_flags_and_rules() -> None:
    assert parse_section("uprobe.s/x:y").sleepable
    assert parse_section("syscall").sleepable
    assert parse_section("xdp.frags").frags and parse_section("xdp.frags").prog_flags
    assert parse_section("kretprobe/do_exit").is_return
    assert not parse_section("kprobe/do_exit").is_return
    assert parse_section("tp_btf/x").attach_btf
    # "type+" needs an exact match or a '/' separator; "type/" needs extras; exact is exact
    for bad in ("tpx", "kprobefoo", "xdp/", "xdp/foo", "socket/x", "sk_skb/unknown", "",
                "cgroup/unknown", "maps"):
        if bad in ("xdp/",):
            continue
        with pytest.raises(SpecError, match="unknown program section"):
            parse_section(bad)
    assert parse_section("sk_skb").prog_type == ProgramType.SK_SKB


# ----------------------------------------------------------------------------- spec (pure)

@pytest.fixture
def objs(bpf_obj) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    names = ["globals", "subprogs", "tailcall", "mapinmap", "externs", "core", "bad",
             "ksym_typed", "core_bad"]
    return {n: bpf_obj(f"{n}.bpf.c") for n in names}


def test_spec_globals(objs: dict[str, Path]) -> None:
    s = CollectionSpec.from_file(objs["globals"])
    assert set(s.programs) == {"count_getpid", "bump"}
    assert s.license == "GPL"
    p = s.programs["count_getpid"]
    assert p.prog_type == ProgramType.RAW_TRACEPOINT and p.attach_target == "sys_enter"
    assert p.func_info and p.line_info and p.func_info[0].insn_off == 0
    refs = {(i.ref, i.ref_kind) for i in p.instructions if i.ref}
    assert ("counts", "map") in refs and (".rodata", "map_value") in refs
    m = s.maps["counts"]
    assert (m.type, m.key_size, m.value_size, m.max_entries) == (MapType.HASH, 4, 8, 16)
    assert m.key_type_id and m.value_type_id
    ro = s.maps[".rodata"]
    assert ro.flags == BPF_F_MMAPABLE | BPF_F_RDONLY_PROG and ro.freeze
    assert ro.kernel_name == "globals.rodata"
    assert s.maps[".data.custom"].kernel_name == ".data.custom"
    assert s.maps[".bss"].data == bytearray(s.maps[".bss"].value_size)
    v = s.variables
    assert v["magic"].value == 1 and v["greeting"].value == "hello"
    assert v["data_counter"].value == 5 and v["custom_ro"].value == 11
    assert v["magic"].constant and not v["data_counter"].constant
    # constants can be edited before load, without touching a copy made earlier
    c = s.copy()
    s.set_constants({"magic": 9})
    assert s.variables["magic"].value == 9 and c.variables["magic"].value == 1
    with pytest.raises(SpecError, match="no global variable"):
        s.set_constants({"nope": 1})
    with pytest.raises(SpecError, match="does not fit"):
        s.variables["greeting"].value = "much too long"


def test_spec_subprograms_appended(objs: dict[str, Path]) -> None:
    s = CollectionSpec.from_file(objs["subprogs"])
    assert s.programs["use_static"].functions == ["use_static", "twice"]
    assert s.programs["use_global"].functions == ["use_global", "twice", "add_global"]
    loop = s.programs["use_loop"]
    assert loop.functions == ["use_loop", "loop_cb"]
    func_refs = [i for i in loop.instructions if i.ref_kind == "func"]
    assert func_refs and func_refs[0].src == asm.BPF_PSEUDO_FUNC
    # one func_info per function, at the function's start
    starts = [i for i, ins in enumerate(asm.slot_offsets(loop.instructions))
              if loop.instructions[i].meta.get("func")]
    slots = asm.slot_offsets(loop.instructions)
    assert [f.insn_off // 8 for f in loop.func_info] == [slots[i] for i in starts]


def test_spec_static_init_and_legacy(objs: dict[str, Path]) -> None:
    s = CollectionSpec.from_file(objs["tailcall"])
    assert s.maps["jumps"].contents == {1: "tail_one", 3: "tail_two"}
    s = CollectionSpec.from_file(objs["mapinmap"])
    outer = s.maps["outer"]
    assert outer.contents == {0: "inner_a", 1: "inner_b"}
    assert outer.inner is not None and outer.inner.type == MapType.ARRAY
    legacy = s.maps["legacy"]
    assert (legacy.type, legacy.key_size, legacy.value_size, legacy.max_entries) == (
        MapType.ARRAY, 4, 8, 4)
    assert s.maps["pinned_counts"].pinning == 1


def test_spec_externs(objs: dict[str, Path]) -> None:
    s = CollectionSpec.from_file(objs["externs"])
    e = s.externs
    assert e["LINUX_KERNEL_VERSION"].kind == "kconfig" and not e["LINUX_KERNEL_VERSION"].weak
    assert e["CONFIG_BPFKIT_DOES_NOT_EXIST"].weak
    assert e["_stext"].kind == "ksym" and not e["_stext"].typed
    assert e["bpfkit_missing_symbol"].weak
    assert e["bpf_rcu_read_lock"].kind == "kfunc"
    assert ".kconfig" in s.maps
    kinds = {i.ref_kind for p in s.programs.values() for i in p.instructions}
    assert {"ksym", "kfunc", "map_value"} <= kinds


def test_spec_core_relos(objs: dict[str, Path]) -> None:
    p = CollectionSpec.from_file(objs["core"]).programs["core_read"]
    assert p.core_relos
    assert all(0 <= r.insn_off < 8 * len(p.instructions) * 2 for r in p.core_relos)


def test_spec_errors(objs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BpfkitError):
        CollectionSpec.from_bytes(b"not an elf at all")
    with pytest.raises(SpecError, match="cannot read"):
        CollectionSpec.from_file(tmp_path / "missing.o")
    src = tmp_path / "weird.bpf.c"
    src.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("bogus_section") int f(void *c) { return 0; }\n')
    obj = tmp_path / "weird.o"
    subprocess.run(["clang-19", "-target", "bpf", "-g", "-O2", "-I/usr/include/x86_64-linux-gnu",
                    "-c", str(src), "-o", str(obj)], check=True)
    with pytest.raises(SpecError, match="bogus_section"):
        CollectionSpec.from_file(obj)


_FUZZ_BASE: dict[str, bytes] = {}


def _fuzz_base() -> bytes:
    if "b" not in _FUZZ_BASE:
        from conftest import build_bpf  # type: ignore[import-not-found]
        _FUZZ_BASE["b"] = build_bpf("tailcall.bpf.c").read_bytes()
    return _FUZZ_BASE["b"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                max_size=12), st.integers(0, 1 << 20))
def test_fuzz_corrupted_objects(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_fuzz_base())
    for pos, val in edits:
        data[pos % len(data)] = val
    if cut % 5 == 0:
        data = data[: cut % len(data)]
    try:
        CollectionSpec.from_bytes(bytes(data))
    except BpfkitError:
        pass


def test_kconfig_and_version_helpers() -> None:
    assert kernel_version_code("6.18.44-fc") == (6 << 16) | (18 << 8) | 44
    assert kernel_version_code("5.4.300") == (5 << 16) | (4 << 8) | 255
    assert kconfig_value("y", 1, "bool") == b"\x01"
    assert kconfig_value("m", 4, "tristate") == (2).to_bytes(4, "little")
    assert kconfig_value("250", 4, "int") == (250).to_bytes(4, "little")
    assert kconfig_value('"abc"', 8, "str") == b"abc".ljust(8, b"\0")
    from bpfkit.host.kconfig import parse_kconfig
    from bpfkit.host.version import parse_release
    assert parse_release("6.18") == (6, 18, 0) and parse_release("weird") == (0, 0, 0)
    # one parser: "is not set" is recorded as n (the loader treats it as unresolved)
    assert parse_kconfig("CONFIG_HZ=250\n# CONFIG_KPROBES is not set\nCONFIG_S=\"x\"\n") == {
        "CONFIG_HZ": "250", "CONFIG_KPROBES": "n", "CONFIG_S": '"x"'}
    assert kconfig_value("y", 1, "char") == b"y"
    with pytest.raises(BpfkitError):
        kconfig_value("m", 1, "bool")


# ----------------------------------------------------------------------------- kernel

pytestmark_root = pytest.mark.requires_root


@contextlib.contextmanager
def raw_tp(prog: bpfkit.Program, name: str = "sys_enter") -> Iterator[None]:
    fd = sc.raw_tracepoint_open(name, prog.fd)
    try:
        yield
    finally:
        os.close(fd)


@pytest.mark.requires_root
def test_load_globals_and_constants(objs: dict[str, Path]) -> None:
    with bpfkit.load(objs["globals"], constants={"magic": 3, "target_pid": os.getpid()}) as c:
        assert c.variables["magic"].value == 3
        r = c.programs["bump"].test_run(context=b"")
        assert r.retval == 3 + ord("h")
        v = c.variables
        assert v["bss_counter"].value == 3 and v["data_counter"].value == 6
        assert v["custom_data"].value == 7 + 11
        assert c.maps["counts"][1] == 3  # keys/values typed through BTF
        # .data is writable from user space, .rodata is frozen
        v["data_counter"].value = 100
        c.programs["bump"].test_run(context=b"")
        assert v["data_counter"].value == 101
        with pytest.raises(LoadError, match="read-only"):
            v["magic"].value = 4
        info = c.maps[".rodata"].info()
        assert info.name == "globals.rodata" and info.flags & BPF_F_RDONLY_PROG
        # a raw_tp program counts this process's getpid() calls
        with raw_tp(c.programs["count_getpid"]):
            for _ in range(7):
                os.getpid()
        assert v["getpid_calls"].value == 7
        assert c.maps["counts"][39] == 7


@pytest.mark.requires_root
def test_spec_reusable_and_autoload(objs: dict[str, Path]) -> None:
    s = CollectionSpec.from_file(objs["globals"])
    s.maps["counts"].max_entries = 64
    with s.load(autoload=["bump"]) as c:
        assert list(c.programs) == ["bump"]
        assert c.maps["counts"].info().max_entries == 64
    s.programs["bump"].autoload = False
    with bpfkit.load(s) as c:
        assert list(c.programs) == ["count_getpid"]
    with pytest.raises(LoadError, match="no program"):
        bpfkit.load(s, autoload={"nope": True})


@pytest.mark.requires_root
def test_load_subprograms(objs: dict[str, Path]) -> None:
    with bpfkit.load(objs["subprogs"]) as c:
        assert c.programs["use_static"].test_run(context=b"").retval == 42
        assert c.programs["use_global"].test_run(context=b"").retval == 102
        assert c.programs["use_loop"].test_run(context=b"").retval == 45
        assert c.variables["loop_sum"].value == 45


@pytest.mark.requires_root
@pytest.mark.parametrize("slot,expected", [(1, 111), (3, 222), (2, 7)])
def test_load_tail_calls(objs: dict[str, Path], slot: int, expected: int) -> None:
    with bpfkit.load(objs["tailcall"], constants={"slot": slot}) as c:
        assert c.programs["entry"].test_run(context=bytes(8)).retval == expected


@pytest.fixture
def pin_dir() -> Iterator[str]:
    if not os.path.ismount(BPF_FS):
        if subprocess.run(["mount", "-t", "bpf", "bpf", BPF_FS]).returncode:
            pytest.skip("bpffs cannot be mounted at /sys/fs/bpf")
    d = tempfile.mkdtemp(prefix="bpfkit_loader_", dir=BPF_FS)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.requires_root
def test_map_in_map_legacy_and_pinning(objs: dict[str, Path], pin_dir: str) -> None:
    for run in (1, 2):
        with bpfkit.load(objs["mapinmap"], pin_root=pin_dir) as c:
            assert c.programs["fill"].test_run(context=b"").retval == 0
            zero = bytes(4)
            assert c.maps["inner_a"][zero] in (1234, (1234).to_bytes(4, "little"))
            assert c.maps["inner_b"][zero] in (5678, (5678).to_bytes(4, "little"))
            assert c.maps["legacy"][(1).to_bytes(4, "little")] == (77).to_bytes(8, "little")  # no BTF
            # the pinned map survives the collection and is reused by the next load
            assert c.maps["pinned_counts"][zero] in (run, run.to_bytes(8, "little"))
            assert os.path.exists(os.path.join(pin_dir, "pinned_counts"))
    # an incompatible pinned map is an error that says what differs
    s = CollectionSpec.from_file(objs["mapinmap"])
    s.maps["pinned_counts"].max_entries = 3
    with pytest.raises(LoadError, match="max_entries 2 pinned vs 3 wanted"):
        bpfkit.load(s, pin_root=pin_dir)


@pytest.mark.requires_root
def test_externs(objs: dict[str, Path]) -> None:
    from bpfkit.host.kallsyms import kallsyms_lookup
    from bpfkit.host.kconfig import kernel_config
    with bpfkit.load(objs["externs"]) as c:
        with raw_tp(c.programs["read_externs"]):
            os.getpid()
        v = {k: x.value for k, x in c.variables.items()}
        assert v["out_version"] == kernel_version_code()
        assert v["out_cookie"] == 1 and v["out_syscall"] == 1
        # x86_64 has __x64_sys_* wrappers, but libbpf (whose value this is) says 1 only when
        # a kprobe on __x64_sys_bpf can be created: BPF_KSYSCALL code depends on it
        from bpfkit.attach.features import has_kprobes
        assert v["out_wrapper"] == (1 if has_kprobes() else 0)
        assert v["out_hz"] == int(kernel_config()["CONFIG_HZ"])
        assert v["out_missing"] == 1  # weak missing kconfig reads 0 (+1)
        assert v["out_link_fops"] == kallsyms_lookup("_stext")
        assert v["out_missing_sym"] == 0
        # kfunc call resolved through kernel BTF; the weak missing kfunc is skipped
        assert c.programs["call_kfuncs"].test_run(context=b"").retval == 5
        assert c.variables["out_kfunc_ran"].value == 1


@pytest.mark.requires_root
def test_typed_ksym(objs: dict[str, Path]) -> None:
    from bpfkit.host.kallsyms import kallsyms_lookup
    if kallsyms_lookup("bpf_prog_active") is None:
        # this kernel has CONFIG_KALLSYMS_ALL off: the kernel itself cannot resolve it
        with pytest.raises(NotFound, match="CONFIG_KALLSYMS_ALL") as ei:
            bpfkit.load(objs["ksym_typed"])
        assert ei.value.errno == errno.ENOENT  # the kernel's answer, which libbpf passes on
        return
    with bpfkit.load(objs["ksym_typed"]) as c:
        with raw_tp(c.programs["read_active"]):
            os.getpid()
        assert c.variables["active_seen"].value == 1


@pytest.mark.requires_root
def test_core_reads(objs: dict[str, Path]) -> None:
    pytest.importorskip("bpfkit.core")
    with bpfkit.load(objs["core"], constants={"target_pid": os.getpid()}) as c:
        with raw_tp(c.programs["core_read"]):
            os.getpid()
        v = c.variables
        assert v["seen_pid"].value == os.getpid()  # main thread: pid == tgid
        assert v["seen_tgid"].value == os.getpid()
        assert v["seen_ppid"].value == os.getppid()
        assert v["has_missing"].value == 0


@pytest.mark.requires_root
def test_core_failure_message(objs: dict[str, Path]) -> None:
    pytest.importorskip("bpfkit.core")
    with pytest.raises(VerifierError) as ei:
        bpfkit.load(objs["core_bad"])
    msg = str(ei.value)
    assert "CO-RE relocation failed" in msg and "bpfkit_no_such_field" in msg
    assert "core_fail" in msg


@pytest.mark.requires_root
def test_verifier_error_names_source_line(objs: dict[str, Path]) -> None:
    with pytest.raises(VerifierError) as ei:
        bpfkit.load(objs["bad"])
    e = ei.value
    assert e.source is not None and "bad.bpf.c:19" in e.source and "return *v" in e.source
    assert "map_value_or_null" in str(e) and "bad.bpf.c:19" in str(e)
    assert e.log


# ----------------------------------------------------------------------------- libbpf parity

def _normalised_xlated(raw: bytes) -> list[tuple[int, int, int, int, int]]:
    """Instructions with map ids replaced by their order of first appearance."""
    ids: dict[int, int] = {}
    out = []
    for i in asm.decode(raw):
        imm = i.imm
        if i.is_ld_imm64 and i.src in (asm.BPF_PSEUDO_MAP_FD, asm.BPF_PSEUDO_MAP_VALUE):
            mid = imm & 0xFFFFFFFF
            imm = (imm >> 32 << 32) | ids.setdefault(mid, len(ids) + 1)
        out.append((i.opcode, i.dst, i.src, i.off, imm))
    return out


def _bpftool_xlated(obj: Path, pin: str) -> dict[str, bytes]:
    r = subprocess.run(["bpftool", "prog", "loadall", str(obj), pin], capture_output=True,
                       text=True)
    if r.returncode:
        pytest.skip(f"bpftool 7.1 (libbpf 1.1) cannot load {obj.name}: "
                    f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
    out: dict[str, bytes] = {}
    for name in os.listdir(pin):
        prog = bpfkit.Program.from_pin(os.path.join(pin, name))
        with prog:
            out[name] = prog.xlated()
    return out


@pytest.mark.requires_root
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
@pytest.mark.parametrize("name", ["globals", "subprogs", "tailcall", "core"])
def test_xlated_matches_libbpf(objs: dict[str, Path], pin_dir: str, name: str) -> None:
    if name == "core":
        pytest.importorskip("bpfkit.core")
    pin = os.path.join(pin_dir, "progs")
    theirs = _bpftool_xlated(objs[name], pin)
    with bpfkit.load(objs[name]) as c:
        for pname, prog in c.programs.items():
            assert pname in theirs, f"bpftool did not load {pname}"
            assert _normalised_xlated(prog.xlated()) == _normalised_xlated(theirs[pname]), pname
