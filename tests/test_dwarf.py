"""The DWARF reader: clang-19 objects at -O0/-O2, DWARF 4 and 5, checked against the
object's own .BTF and llvm-dwarfdump; stripped objects; corrupted input (fuzz)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit.btf import Spec
from bpfkit.btf import types as bt
from bpfkit.btf.codec import decoder_for
from bpfkit.build import compile_bpf
from bpfkit.dwarf import DebugInfo, DebugSections, debug_sections
from bpfkit.elf import ElfFile
from bpfkit.errors import DwarfError, ParseError
from bpfkit.spec import CollectionSpec

BPF = Path(__file__).resolve().parent / "bpf"
VARIANTS = [(o, d) for o in ("-O0", "-O2") for d in (4, 5)]


def _build(tmp: Path, src: str, opt: str, dwarf: int) -> Path:
    out = tmp / f"{Path(src).stem}{opt}-dwarf{dwarf}.o"
    # compile_bpf passes -g -O2; a later -O0 / -gdwarf-N on the command line wins
    return compile_bpf(BPF / src, out, extra_flags=[opt, f"-gdwarf-{dwarf}"])


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"{v[0]}-dwarf{v[1]}")
def events_obj(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    opt, dwarf = request.param
    return _build(tmp_path_factory.mktemp("dwarf"), "dwarf_events.bpf.c", opt, dwarf)


def _pack_event(pid: int, kind: int, ts: int, comm: bytes, flags: int, prio: int,
                grid12: int, u32: int) -> bytes:
    b = bytearray(72)
    struct.pack_into("<IiQ16s", b, 0, pid, kind, ts, comm)
    struct.pack_into("<I", b, 32, flags | (prio << 3))
    struct.pack_into("<h", b, 34 + 2 * (1 * 3 + 2), grid12)
    struct.pack_into("<I", b, 48, u32)
    return bytes(b)


def test_local_only_struct_recovered(events_obj: Path) -> None:
    spec = CollectionSpec.from_file(events_obj)
    assert spec.btf is not None and not spec.btf.types_by_name("event", bt.BTF_KIND_STRUCT), \
        "the test premise: clang leaves a local-only struct out of .BTF"
    d = spec.dwarf()
    assert d.units[0].version in (4, 5)
    types = d.to_btf()
    ev = types.find("event", bt.Struct)
    assert types.sizeof(ev.id) == 72
    layout = {m.name: (m.bit_offset, m.bitfield_size, types.type_name(m.type))
              for m in ev.members}
    assert layout == {
        "pid": (0, 0, "__u32"), "kind": (32, 0, "enum event_kind"), "ts": (64, 0, "__u64"),
        "comm": (128, 0, "char[16]"), "flags": (256, 3, "unsigned int"),
        "prio": (259, 5, "unsigned int"), "grid": (272, 0, "short[2][3]"),
        "u": (384, 0, "union (anon)"), "next": (448, 0, "struct event *"),
        "cb": (512, 0, "int (*)(int, ...)")}
    kind = types.find("event_kind", bt.Enum)
    assert kind.signed and kind.as_dict() == {"EV_EXEC": 1, "EV_EXIT": 2, "EV_FAIL": -1}
    rec = decoder_for(types, "struct event")(
        _pack_event(42, -1, 9, b"bash", 5, 17, -7, 0x01020304))
    assert (rec.pid, rec.ts, rec.comm, rec.flags, rec.prio) == (42, 9, "bash", 5, 17)
    assert rec.kind.name == "EV_FAIL" and rec.grid[1][2] == -7 and rec.grid[0][0] == 0
    assert rec.u.bytes == b"\x04\x03\x02\x01" or list(rec.u.bytes) == [4, 3, 2, 1]
    # locals of each program: the pointer the ring buffer program writes through
    rb_locals = {types.type_name(t) for t in d.local_types("on_exec_rb")}
    assert "struct event *" in rb_locals
    assert "struct event" in {types.type_name(t) for t in d.local_types("on_exec_perf")}


def test_relocations_applied_and_sections_named(events_obj: Path) -> None:
    with ElfFile.open(events_obj) as elf:
        rels = {s.name for s in elf.sections if s.name.startswith(".rel.debug")}
        secs = debug_sections(elf)
    assert ".rel.debug_info" in rels  # clang leaves ABS32 relocations for us to apply
    rows = DebugInfo(secs).lines()
    assert rows and {r.section for r in rows} == {"tp/syscalls/sys_exit_execve"}
    assert all(r.file.endswith("dwarf_events.bpf.c") or r.file.endswith(".h") for r in rows)


def _dwarfdump_rows(obj: Path) -> list[tuple[int, int, int]] | None:
    tool = shutil.which("llvm-dwarfdump-19") or shutil.which("llvm-dwarfdump")
    if tool is None:
        return None
    out = subprocess.run([tool, "--debug-line", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"0x([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+\d+", line)
        if m:
            rows.append((int(m[1], 16), int(m[2]), int(m[3])))
    return rows


def test_line_table_matches_llvm_dwarfdump(events_obj: Path) -> None:
    want = _dwarfdump_rows(events_obj)
    if want is None:
        pytest.skip("llvm-dwarfdump is not installed (the llvm-19 package has it)")
    got = [(r.address, r.line, r.column) for r in CollectionSpec.from_file(events_obj)
           .dwarf().lines()]
    # llvm-dwarfdump also prints end_sequence rows, which carry no line of their own
    assert got == want[:len(got)] and len(want) - len(got) == 1


def test_types_agree_with_btf_where_both_have_them(tmp_path: Path) -> None:
    """Every named struct/union/enum in .BTF has the same size and member layout in DWARF."""
    for src in ("codec_types.bpf.c", "globals.bpf.c", "ringbuf_event.bpf.c"):
        for opt, dwarf in VARIANTS:
            spec = CollectionSpec.from_file(_build(tmp_path, src, opt, dwarf))
            assert spec.btf is not None
            dw = spec.dwarf().to_btf()
            checked = 0
            for t in spec.btf:
                if not t.name or not isinstance(t, (bt.Struct, bt.Union, bt.EnumBase)):
                    continue
                same = [u for u in dw.types_by_name(t.name) if type(u) is type(t)]
                assert same, f"{src}: {t.kind_name} {t.name} missing from DWARF"
                u = same[0]
                assert spec.btf.sizeof(t.id) == dw.sizeof(u.id), t.name
                if isinstance(t, bt.Composite):
                    assert isinstance(u, bt.Composite)
                    assert [(m.name, m.bit_offset, m.bitfield_size,
                             spec.btf.type_name(m.type)) for m in t.members] == \
                        [(m.name, m.bit_offset, m.bitfield_size, dw.type_name(m.type))
                         for m in u.members], t.name
                else:
                    assert isinstance(u, bt.EnumBase)
                    assert t.as_dict() == u.as_dict() and t.signed == u.signed, t.name
                checked += 1
            assert checked, f"{src}: no named type to compare"


def test_stripped_object_says_so(tmp_path: Path) -> None:
    obj = _build(tmp_path, "dwarf_events.bpf.c", "-O2", 5)
    strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
    if strip is None:
        pytest.skip("llvm-strip is not installed (the llvm-19 package has it)")
    out = tmp_path / "stripped.o"
    subprocess.run([strip, "--strip-debug", str(obj), "-o", str(out)], check=True)
    spec = CollectionSpec.from_file(out)
    with pytest.raises(DwarfError, match="no DWARF.*without -g.*stripped"):
        spec.dwarf()
    assert issubclass(DwarfError, ParseError)


def test_gz_compressed_debug_sections(tmp_path: Path) -> None:
    out = tmp_path / "gz.o"
    compile_bpf(BPF / "dwarf_events.bpf.c", out, extra_flags=["-gz=zlib"])
    with ElfFile.open(out) as elf:
        assert elf.section(".debug_info") is not None
    types = CollectionSpec.from_file(out).dwarf().to_btf()
    assert types.sizeof(types.find("event", bt.Struct).id) == 72


def test_bad_inputs_name_the_section() -> None:
    with pytest.raises(DwarfError, match="no DWARF"):
        DebugInfo(DebugSections())
    # version 6 unit
    with pytest.raises(DwarfError, match=r"\.debug_info at offset 0x6: .*version 6"):
        DebugInfo(DebugSections({".debug_info": struct.pack("<IH", 7, 6) + b"\0" * 5}))
    # unit longer than the section
    with pytest.raises(DwarfError, match="runs past the end"):
        DebugInfo(DebugSections({".debug_info": struct.pack("<IH", 100, 5)}))
    # an abbreviation code the table lacks
    info = struct.pack("<IHBBI", 9, 5, 1, 8, 0) + b"\x07"
    with pytest.raises(DwarfError, match="abbreviation code 7"):
        DebugInfo(DebugSections({".debug_info": info, ".debug_abbrev": b"\0"}))


# --------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=int(os.environ.get("BPFKIT_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sections(tmp_path_factory: pytest.TempPathFactory) -> DebugSections:
    obj = _build(tmp_path_factory.mktemp("fuzz"), "dwarf_events.bpf.c", "-O0", 5)
    with ElfFile.open(obj) as elf:
        return debug_sections(elf)


def _exercise(secs: DebugSections) -> None:
    """All a consumer does with DWARF: may raise only DwarfError (or BTFError on types)."""
    try:
        d = DebugInfo(secs)
        spec: Spec = d.to_btf()
        for tid in range(len(spec)):
            spec.type_name(tid)
        d.lines()
        d.local_types("on_exec_rb")
    except ParseError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzz_corrupt_sections(sections: DebugSections, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([".debug_info", ".debug_abbrev", ".debug_line",
                                      ".debug_str_offsets", ".debug_addr"]))
    buf = bytearray(sections.data[name])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(0, len(buf)))]
    secs = DebugSections(dict(sections.data), sections.targets, sections.byteorder)
    secs.data[name] = bytes(buf)
    _exercise(secs)


@FUZZ
@given(st.binary(max_size=256), st.binary(max_size=64))
def test_fuzz_random_bytes(info: bytes, abbrev: bytes) -> None:
    _exercise(DebugSections({".debug_info": struct.pack("<IHBBI", len(info) + 8, 5, 1, 8, 0)
                             + info, ".debug_abbrev": abbrev, ".debug_line": info}))
