"""Tests of bpfkit.elf against real objects: a BPF object compiled here (both byte
orders), the system Python and the libc mapped into this process, plus fuzzing that
checks malformed input only ever raises ElfError, quickly."""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfkit import elf
from bpfkit.elf import ElfFile
from bpfkit.errors import ElfError

CLANG = shutil.which("clang-19")
READELF = shutil.which("readelf")

BPF_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

volatile __u64 hits = 0;
const volatile __u32 filter_pid = 0;

__attribute__((noinline)) int bump(__u64 *v)
{
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    __u32 key = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *v;

    if (filter_pid && key != filter_pid)
        return 0;
    hits++;
    v = bpf_map_lookup_elem(&counts, &key);
    if (v)
        return bump(v);
    bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

PROG_SEC = "tp/syscalls/sys_enter_getpid"


def _compile(tmp: Path, target: str) -> Path:
    if CLANG is None:
        pytest.skip("clang-19 is not installed: cannot build a BPF object")
    src = tmp / "prog.c"
    src.write_text(BPF_SOURCE)
    out = tmp / f"prog-{target}.o"
    # linux/types.h needs <asm/types.h>, which Debian keeps under the multiarch dir.
    multiarch = "/usr/include/" + os.uname().machine + "-linux-gnu"
    cmd = [CLANG, "-target", target, "-g", "-O2", "-I", multiarch, "-c", str(src), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def bpf_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(tmp_path_factory.mktemp("bpf"), "bpf")


@pytest.fixture(scope="module")
def bpfeb_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(tmp_path_factory.mktemp("bpfeb"), "bpfeb")


def _python_binary() -> Path:
    p = Path("/usr/bin/python3.11")
    return p if p.exists() else Path(os.path.realpath(sys.executable))


def _libc_path() -> Path:
    """The libc actually mapped into this process, so addresses can be cross-checked."""
    ctypes.CDLL(None).getpid  # noqa: B018 - make sure libc is loaded
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6:
                continue
            base = os.path.basename(parts[5])
            if base.startswith("libc.so") or (base.startswith("libc-") and ".so" in base):
                return Path(parts[5])
    pytest.skip("no libc mapped in this process (static or musl build?)")


def _exercise(e: ElfFile) -> None:
    """Touch every lazily parsed part, the way the loader and uprobes would."""
    for s in e.sections:
        s.data()
        e.section(s.name)
    for s in e.sections:
        if s.type in (elf.SHT_SYMTAB, elf.SHT_DYNSYM):
            e.symbols(s.name)
    e.symbols()
    e.dynamic_symbols()
    e.symbol_map()
    e.find_symbol("on_getpid")
    for sec in e.relocation_sections().values():
        e.relocations(sec)
    for s in e.sections:
        if s.type in (elf.SHT_REL, elf.SHT_RELA):
            e.relocations(s)
    e.notes()
    e.build_id()
    e.debuglink()
    for seg in e.segments:
        seg.data()
        if seg.type == elf.PT_LOAD and seg.filesz:
            e.vaddr_to_offset(seg.vaddr)
            e.offset_to_vaddr(seg.offset)


def _parses(data: bytes) -> bool:
    try:
        ElfFile(data)
        return True
    except ElfError:
        return False


def _parse_or_elferror(data: bytes) -> None:
    try:
        e = ElfFile(data)
        _exercise(e)
    except ElfError as err:
        assert str(err)


# ----------------------------------------------------------------------------------
# BPF objects


def test_bpf_object_header_and_sections(bpf_obj: Path) -> None:
    with ElfFile.open(bpf_obj) as e:
        assert e.byteorder == "little"
        assert e.machine == elf.EM_BPF == 247
        assert e.type == elf.ET_REL
        assert e.entry == 0
        assert e.segments == []
        names = [s.name for s in e.sections]
        for want in (PROG_SEC, ".text", ".maps", ".bss", ".rodata", "license", ".BTF",
                     ".BTF.ext", ".symtab", ".strtab"):
            assert want in names
        assert [s.index for s in e.sections] == list(range(len(e.sections)))
        prog = e.section(PROG_SEC)
        assert prog is not None
        assert prog.type == elf.SHT_PROGBITS
        assert prog.flags & elf.SHF_EXECINSTR
        assert prog.size % 8 == 0 and len(prog.data()) == prog.size
        lic = e.section("license")
        assert lic is not None and lic.data() == b"GPL\0"
        bss = e.section(".bss")
        assert bss is not None and bss.type == elf.SHT_NOBITS
        assert bss.data() == b"" and bss.size == 8
        assert e.section("no such section") is None
        btf = e.section(".BTF")
        assert btf is not None and btf.data()[:2] in (b"\x9f\xeb", b"\xeb\x9f")


def test_bpf_object_symbols(bpf_obj: Path) -> None:
    with ElfFile.open(bpf_obj) as e:
        syms = e.symbols()
        assert syms[0].index == 0 and syms[0].name == ""
        assert [s.index for s in syms] == list(range(len(syms)))
        assert e.dynamic_symbols() == []
        prog = e.find_symbol("on_getpid")
        assert prog is not None
        assert prog.type == elf.STT_FUNC and prog.bind == elf.STB_GLOBAL
        assert prog.section_name == PROG_SEC and prog.size > 0
        assert prog.visibility == elf.STV_DEFAULT
        counts = e.find_symbol("counts")
        assert counts is not None and counts.type == elf.STT_OBJECT
        assert counts.section_name == ".maps" and counts.size == 32
        hits = e.find_symbol("hits")
        assert hits is not None and hits.section_name == ".bss" and hits.size == 8
        fp = e.find_symbol("filter_pid")
        assert fp is not None and fp.section_name == ".rodata"
        bump = e.find_symbol("bump")
        assert bump is not None and bump.section_name == ".text"
        assert e.find_symbol("nope") is None
        assert e.symbol_map()["LICENSE"][0].section_name == "license"
        srcfile = [s for s in syms if s.type == elf.STT_FILE]
        assert srcfile and srcfile[0].shndx == elf.SHN_ABS and srcfile[0].section_name == ""


def test_bpf_object_relocations(bpf_obj: Path) -> None:
    with ElfFile.open(bpf_obj) as e:
        prog = e.section(PROG_SEC)
        assert prog is not None
        relsecs = e.relocation_sections()
        rel = relsecs[prog.index]
        assert rel.type == elf.SHT_REL and rel.name == ".rel" + PROG_SEC
        relocs = e.relocations(rel)
        assert relocs == e.relocations(rel.name) == e.relocations(rel.index)
        by_name = {(r.symbol.name, r.type) for r in relocs}
        assert ("counts", elf.R_BPF_64_64) in by_name
        assert ("hits", elf.R_BPF_64_64) in by_name
        assert ("filter_pid", elf.R_BPF_64_64) in by_name
        # The call to bump() in .text is a pc-relative call relocation.
        calls = [r for r in relocs if r.type == elf.R_BPF_64_32]
        assert calls and calls[0].symbol.section_name == ".text"
        insns = prog.data()
        for r in relocs:
            assert r.offset % 8 == 0 and r.offset < len(insns)
            assert r.addend == 0
            assert r.symbol is e.symbols()[r.symbol_index] or r.symbol == e.symbols()[
                r.symbol_index]
            if r.type == elf.R_BPF_64_64:
                assert insns[r.offset] == 0x18  # BPF_LD | BPF_IMM | BPF_DW
            else:
                assert insns[r.offset] == 0x85  # BPF_JMP | BPF_CALL
        types = {r.type for s in relsecs.values() for r in e.relocations(s)}
        assert {elf.R_BPF_64_ABS64, elf.R_BPF_64_ABS32, elf.R_BPF_64_NODYLD32} <= types
        with pytest.raises(ElfError, match="not a relocation section"):
            e.relocations(".maps")
        with pytest.raises(ElfError, match="no section named"):
            e.relocations(".rel.nothing")


def test_big_endian_bpf_object(bpf_obj: Path, bpfeb_obj: Path) -> None:
    with ElfFile.open(bpf_obj) as le, ElfFile.open(bpfeb_obj) as be:
        assert le.byteorder == "little" and be.byteorder == "big"
        assert be.machine == elf.EM_BPF and be.type == elf.ET_REL
        assert [s.name for s in be.sections] == [s.name for s in le.sections]
        assert [s.type for s in be.sections] == [s.type for s in le.sections]
        for name in (PROG_SEC, ".maps", ".bss", ".rodata", "license"):
            assert be.section(name).size == le.section(name).size  # type: ignore[union-attr]
        strip = [(s.name, s.value, s.size, s.bind, s.type, s.shndx, s.section_name)
                 for s in le.symbols()]
        assert [(s.name, s.value, s.size, s.bind, s.type, s.shndx, s.section_name)
                for s in be.symbols()] == strip
        rle = le.relocations(".rel" + PROG_SEC)
        rbe = be.relocations(".rel" + PROG_SEC)
        assert [(r.offset, r.type, r.symbol.name) for r in rbe] == [
            (r.offset, r.type, r.symbol.name) for r in rle]


def test_bytes_and_memoryview_inputs(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    with ElfFile.open(bpf_obj) as mapped:
        want = [(s.name, s.data()) for s in mapped.sections]
        want_syms = mapped.symbols()
    for data in (raw, memoryview(raw), bytearray(raw), memoryview(bytearray(raw))[0:]):
        e = ElfFile(data)
        assert [(s.name, s.data()) for s in e.sections] == want
        assert e.symbols() == want_syms


def test_close_keeps_cached_results(bpf_obj: Path) -> None:
    e = ElfFile.open(bpf_obj)
    syms = e.symbols()
    sec = e.section(".maps")
    e.close()
    e.close()  # idempotent
    assert e.symbols() == syms
    assert sec is not None
    with pytest.raises(ElfError, match="closed"):
        sec.data()


# ----------------------------------------------------------------------------------
# Real binaries


def test_python_binary_dynsym_notes_buildid() -> None:
    path = _python_binary()
    with ElfFile.open(path) as e:
        assert e.type in (elf.ET_EXEC, elf.ET_DYN)
        assert e.machine in (elf.EM_X86_64, elf.EM_AARCH64) or e.machine > 0
        assert e.entry != 0
        assert any(seg.type == elf.PT_LOAD for seg in e.segments)
        dyn = e.dynamic_symbols()
        assert len(dyn) > 100
        sym = e.find_symbol("Py_Initialize") or e.find_symbol("Py_BytesMain")
        assert sym is not None and sym.type == elf.STT_FUNC
        if sym.defined:
            off = e.vaddr_to_offset(sym.value)
            assert e.offset_to_vaddr(off) == sym.value
        bid = e.build_id()
        if bid is not None:
            assert len(bid) >= 16 and int(bid, 16) >= 0
            if READELF:
                out = subprocess.run([READELF, "-n", str(path)], capture_output=True,
                                     text=True, check=True).stdout
                assert f"Build ID: {bid}" in out
        link = e.debuglink()
        if link is not None:
            assert link[0] and 0 <= link[1] < 2**32
        if READELF:
            out = subprocess.run([READELF, "--dyn-syms", "-W", str(path)],
                                 capture_output=True, text=True, check=True).stdout
            count = sum(1 for ln in out.splitlines() if ln.strip().split(":")[0].isdigit())
            assert count == len(dyn)


def _parse_stapsdt(desc: bytes, byteorder: str) -> tuple[str, str, str, int]:
    e = "<" if byteorder == "little" else ">"
    pc, _base, _sema = struct.unpack_from(e + "QQQ", desc)
    provider, name, args = desc[24:].split(b"\0")[:3]
    return provider.decode(), name.decode(), args.decode(), pc


def test_python_usdt_notes() -> None:
    path = _python_binary()
    with ElfFile.open(path) as e:
        if e.section(".note.stapsdt") is None:
            pytest.skip(f"{path} was built without USDT probes (no .note.stapsdt)")
        notes = e.notes(".note.stapsdt")
        assert notes and all(n.name == "stapsdt" and n.type == elf.NT_STAPSDT for n in notes)
        probes = [_parse_stapsdt(n.desc, e.byteorder) for n in notes]
        assert {p[0] for p in probes} == {"python"}
        assert "function__entry" in {p[1] for p in probes}
        for _prov, _name, _args, pc in probes:
            assert e.vaddr_to_offset(pc) > 0
        # notes() without a name covers every note section, this one included.
        assert len(e.notes()) > len(notes)
        assert e.notes(".note.does-not-exist") == []


def test_libc_getpid_matches_the_running_process() -> None:
    path = _libc_path()
    with ElfFile.open(path) as e:
        assert e.type == elf.ET_DYN
        sym = e.find_symbol("getpid")
        assert sym is not None
        assert sym in e.symbol_map(".dynsym")["getpid"]
        assert sym.type in (elf.STT_FUNC, elf.STT_GNU_IFUNC) and sym.defined
        assert sym.section_name == ".text"
        off = e.vaddr_to_offset(sym.value)
        code = e.section(".text")
        assert code is not None and code.offset <= off < code.offset + code.size
        assert e.symbols(".dynsym") == e.dynamic_symbols()
        start = off - code.offset
        file_bytes = code.data()[start:start + max(sym.size, 1)]
        # The same bytes are in memory at libc's load base + st_value.
        base = _load_base(path)
        addr = ctypes.cast(ctypes.CDLL(str(path)).getpid, ctypes.c_void_p).value
        if sym.type == elf.STT_FUNC:
            assert addr == base + sym.value
            assert ctypes.string_at(addr, len(file_bytes)) == file_bytes
        rela = [s for s in e.sections if s.type == elf.SHT_RELA]
        assert rela
        for s in rela:
            for r in e.relocations(s)[:50]:
                assert 0 <= r.symbol_index < max(len(e.dynamic_symbols()), 1)


def _load_base(path: Path) -> int:
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            # Private mappings only: ElfFile.open's own shared mapping is listed too.
            if (len(parts) >= 6 and parts[5] == str(path) and int(parts[2], 16) == 0
                    and parts[1].endswith("p")):
                return int(parts[0].split("-")[0], 16)
    pytest.skip(f"{path} is not mapped at file offset 0 in this process")


def test_symbol_table_speed() -> None:
    """A 7 MB binary's dynamic symbol table parses in a few ms (generous bound for CI)."""
    path = _python_binary()
    with ElfFile.open(path) as e:
        t0 = time.perf_counter()
        n = len(e.dynamic_symbols()) + len(e.symbols())
        elapsed = time.perf_counter() - t0
    assert n > 0
    assert elapsed < 0.25, f"{n} symbols took {elapsed * 1e3:.1f} ms"


# ----------------------------------------------------------------------------------
# Malformed input


def _sh_field(raw: bytes, index: int, field_off: int, fmt: str, value: int) -> bytes:
    b = bytearray(raw)
    shoff = struct.unpack_from("<Q", b, 0x28)[0]
    struct.pack_into("<" + fmt, b, shoff + index * 64 + field_off, value)
    return bytes(b)


def _index_of(raw: bytes, name: str) -> int:
    sec = ElfFile(raw).section(name)
    assert sec is not None
    return sec.index


def test_bad_magic_and_class(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    with pytest.raises(ElfError, match="not an ELF file"):
        ElfFile(b"\x7fELG" + raw[4:])
    with pytest.raises(ElfError, match="ELFCLASS32"):
        ElfFile(raw[:4] + b"\x01" + raw[5:])
    with pytest.raises(ElfError, match="data encoding"):
        ElfFile(raw[:5] + b"\x03" + raw[6:])
    with pytest.raises(ElfError, match="too short"):
        ElfFile(b"")
    with pytest.raises(ElfError, match="truncated ELF header"):
        ElfFile(raw[:40])


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ElfError, match="empty"):
        ElfFile.open(empty)


def test_malformed_headers(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    b = bytearray(raw)
    struct.pack_into("<H", b, 0x3C, 0xFFFE)  # e_shnum
    with pytest.raises(ElfError, match="do not fit"):
        ElfFile(bytes(b))
    b = bytearray(raw)
    struct.pack_into("<Q", b, 0x28, len(raw) + 100)  # e_shoff past EOF
    with pytest.raises(ElfError, match="truncated section header"):
        ElfFile(bytes(b))
    b = bytearray(raw)
    struct.pack_into("<H", b, 0x3E, 500)  # e_shstrndx
    with pytest.raises(ElfError, match="e_shstrndx"):
        ElfFile(bytes(b))
    b = bytearray(raw)
    struct.pack_into("<H", b, 0x3A, 40)  # e_shentsize too small
    with pytest.raises(ElfError, match="e_shentsize"):
        ElfFile(bytes(b))
    b = bytearray(raw)
    struct.pack_into("<Q", b, 0x20, 64)  # e_phoff, with far too many headers
    struct.pack_into("<HH", b, 0x36, 56, 1000)
    with pytest.raises(ElfError, match="program headers"):
        ElfFile(bytes(b))


def test_extended_section_numbering(bpf_obj: Path) -> None:
    """e_shnum == 0 / e_shstrndx == SHN_XINDEX move the real values to section 0."""
    raw = bpf_obj.read_bytes()
    e0 = ElfFile(raw)
    shnum, shstrndx = struct.unpack_from("<HH", raw, 0x3C)
    b = bytearray(raw)
    struct.pack_into("<HH", b, 0x3C, 0, elf.SHN_XINDEX)
    b = bytearray(_sh_field(bytes(b), 0, 32, "Q", shnum))
    b = bytearray(_sh_field(bytes(b), 0, 40, "I", shstrndx))
    e = ElfFile(bytes(b))
    assert [s.name for s in e.sections] == [s.name for s in e0.sections]
    assert e.symbols() == e0.symbols()


def test_malformed_sections(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    symtab = _index_of(raw, ".symtab")
    rel = _index_of(raw, ".rel" + PROG_SEC)
    # Section data past EOF.
    bad = ElfFile(_sh_field(raw, symtab, 24, "Q", len(raw) - 10))
    with pytest.raises(ElfError, match="past the end of the file"):
        bad.symbols()
    # Size overflowing the file.
    bad = ElfFile(_sh_field(raw, symtab, 32, "Q", 2**63))
    with pytest.raises(ElfError, match="past the end of the file"):
        bad.symbols()
    # sh_link out of range / not a string table.
    with pytest.raises(ElfError, match="sh_link"):
        ElfFile(_sh_field(raw, symtab, 40, "I", 9999)).symbols()
    with pytest.raises(ElfError, match="not a string table"):
        ElfFile(_sh_field(raw, symtab, 40, "I", rel)).symbols()
    # Wrong entry size.
    with pytest.raises(ElfError, match="entry size"):
        ElfFile(_sh_field(raw, symtab, 56, "Q", 7)).symbols()
    with pytest.raises(ElfError, match="entry size"):
        ElfFile(_sh_field(raw, rel, 56, "Q", 24)).relocations(rel)
    # Relocation section linked to a non-symbol table.
    with pytest.raises(ElfError, match="not a symbol table"):
        ElfFile(_sh_field(raw, rel, 40, "I", 1)).relocations(rel)
    # Bad section name offset.
    with pytest.raises(ElfError, match="section name offset"):
        ElfFile(_sh_field(raw, 3, 0, "I", 0xFFFFFF))


def test_malformed_symbols_and_relocations(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    e = ElfFile(raw)
    symtab = e.section(".symtab")
    relsec = e.section(".rel" + PROG_SEC)
    assert symtab is not None and relsec is not None
    b = bytearray(raw)
    struct.pack_into("<I", b, symtab.offset + 11 * 24, 0x7FFFFFFF)  # st_name of a symbol
    with pytest.raises(ElfError, match="string offset"):
        ElfFile(bytes(b)).symbols()
    b = bytearray(raw)
    struct.pack_into("<Q", b, relsec.offset + 8, (5000 << 32) | 1)  # r_info symbol index
    with pytest.raises(ElfError, match="refers to symbol 5000"):
        ElfFile(bytes(b)).relocations(relsec.index)
    b = bytearray(raw)
    struct.pack_into("<H", b, symtab.offset + 11 * 24 + 6, elf.SHN_XINDEX)
    with pytest.raises(ElfError, match="SHT_SYMTAB_SHNDX"):
        ElfFile(bytes(b)).symbols()


def _note(name: bytes, ntype: int, desc: bytes) -> bytes:
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def _with_note_section(raw: bytes, payload: bytes) -> bytes:
    """Turn the license section into a SHT_NOTE section holding ``payload``."""
    idx = _index_of(raw, "license")
    b = bytearray(raw) + payload
    b = bytearray(_sh_field(bytes(b), idx, 4, "I", elf.SHT_NOTE))
    b = bytearray(_sh_field(bytes(b), idx, 24, "Q", len(raw)))
    b = bytearray(_sh_field(bytes(b), idx, 32, "Q", len(payload)))
    return _sh_field(bytes(b), idx, 48, "Q", 4)


def test_notes_build_id_and_overruns(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    bid = bytes(range(20))
    payload = _note(b"GNU\0", elf.NT_GNU_BUILD_ID, bid) + _note(b"stapsdt\0", 3, b"x" * 5) \
        + _note(b"", 9, b"")
    e = ElfFile(_with_note_section(raw, payload))
    notes = e.notes("license")
    assert [(n.name, n.type, n.desc) for n in notes] == [
        ("GNU", 3, bid), ("stapsdt", 3, b"xxxxx"), ("", 9, b"")]
    assert e.build_id() == bid.hex()
    assert ElfFile(raw).build_id() is None
    over = struct.pack("<III", 4, 0xFFFFFFF0, 3) + b"GNU\0"
    with pytest.raises(ElfError, match="overruns"):
        ElfFile(_with_note_section(raw, over)).notes()
    with pytest.raises(ElfError, match="truncated note"):
        ElfFile(_with_note_section(raw, payload + b"\1\2\3")).notes()
    with pytest.raises(ElfError, match="not a note section"):
        ElfFile(raw).notes(".maps")


def test_debuglink(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    idx = _index_of(raw, "license")
    shstr = ElfFile(raw).sections[struct.unpack_from("<H", raw, 0x3E)[0]]
    # Rename "license" -> a new name appended to a copy of .shstrtab at EOF.
    table = shstr.data() + b".gnu_debuglink\0"
    link = b"prog.debug\0\0" + struct.pack("<I", 0xDEADBEEF)
    b = bytearray(raw) + table + link
    b = bytearray(_sh_field(bytes(b), shstr.index, 24, "Q", len(raw)))
    b = bytearray(_sh_field(bytes(b), shstr.index, 32, "Q", len(table)))
    b = bytearray(_sh_field(bytes(b), idx, 0, "I", len(shstr.data())))
    b = bytearray(_sh_field(bytes(b), idx, 24, "Q", len(raw) + len(table)))
    b = bytearray(_sh_field(bytes(b), idx, 32, "Q", len(link)))
    e = ElfFile(bytes(b))
    assert e.debuglink() == ("prog.debug", 0xDEADBEEF)
    assert ElfFile(raw).debuglink() is None
    b = bytearray(_sh_field(bytes(b), idx, 32, "Q", 12))
    with pytest.raises(ElfError, match="no CRC"):
        ElfFile(bytes(b)).debuglink()


def test_address_translation_errors() -> None:
    with ElfFile.open(_python_binary()) as e:
        with pytest.raises(ElfError, match="PT_LOAD"):
            e.vaddr_to_offset(0xFFFF_FFFF_FFFF_0000)
        with pytest.raises(ElfError, match="PT_LOAD"):
            e.offset_to_vaddr(2**62)


# ----------------------------------------------------------------------------------
# Fuzzing

FUZZ = settings(max_examples=300, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_elferror(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_after_valid_ident(tail: bytes) -> None:
    _parse_or_elferror(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + tail)
    _parse_or_elferror(b"\x7fELF\x02\x02\x01" + b"\0" * 9 + tail)


def _headers_first(raw: bytes) -> bytes:
    """The same object with its section header table and section name table moved right
    after the ELF header.

    clang puts both at the end, so truncations would all fail on the headers; with
    them first, truncations cut into section contents, symbols and relocations.
    """
    e = ElfFile(raw)
    en = "<" if e.byteorder == "little" else ">"
    shoff, = struct.unpack_from(en + "Q", raw, 0x28)
    shstrndx, = struct.unpack_from(en + "H", raw, 0x3E)
    names = e.sections[shstrndx].data()
    size = len(e.sections) * 64
    shift = size + len(names)
    table = bytearray(raw[shoff:shoff + size])
    for i in range(len(e.sections)):
        off, = struct.unpack_from(en + "Q", table, i * 64 + 24)
        if off >= 64:
            struct.pack_into(en + "Q", table, i * 64 + 24, off + shift)
    struct.pack_into(en + "Q", table, shstrndx * 64 + 24, 64 + size)
    out = bytearray(raw[:64]) + table + names + raw[64:shoff] + raw[shoff + size:]
    struct.pack_into(en + "Q", out, 0x28, 64)
    return bytes(out)


def test_headers_first_layout_is_equivalent(bpf_obj: Path) -> None:
    raw = bpf_obj.read_bytes()
    a, b = ElfFile(raw), ElfFile(_headers_first(raw))
    assert [(s.name, s.data()) for s in a.sections] == [(s.name, s.data()) for s in b.sections]
    assert a.symbols() == b.symbols()


def test_fuzz_every_truncation(bpf_obj: Path, bpfeb_obj: Path) -> None:
    images = []
    for path in (bpf_obj, bpfeb_obj):
        images += [path.read_bytes(), _headers_first(path.read_bytes())]
    deep = 0
    for raw in images:
        t0 = time.perf_counter()
        for n in range(len(raw) + 1):
            _parse_or_elferror(raw[:n])
            deep += _parses(raw[:n])
        # Each truncation must be cheap: no hang, no quadratic blow-up.
        assert time.perf_counter() - t0 < 30
    assert deep > 1000  # truncations reached past the headers


@settings(max_examples=400, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1,
                max_size=24))
def test_fuzz_corruption(bpf_obj: Path, edits: list[tuple[int, int]]) -> None:
    b = bytearray(bpf_obj.read_bytes())
    for pos, val in edits:
        b[pos % len(b)] = val
    t0 = time.perf_counter()
    _parse_or_elferror(bytes(b))
    assert time.perf_counter() - t0 < 2


@settings(max_examples=300, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 63), st.sampled_from([0, 1, 0x7F, 0xFF])),
                min_size=1, max_size=6),
       st.integers(0, 40), st.integers(0, 63), st.integers(0, 2**64 - 1))
def test_fuzz_header_fields(bpf_obj: Path, hdr_edits: list[tuple[int, int]], sec: int,
                            field_off: int, value: int) -> None:
    """Aim at the fields that drive parsing: ELF header and one section header."""
    raw = bpf_obj.read_bytes()
    b = bytearray(raw)
    for pos, val in hdr_edits:
        if pos >= 16:  # keep the ident valid, so parsing goes deeper
            b[pos] = val
    shoff = struct.unpack_from("<Q", raw, 0x28)[0]
    pos = shoff + (sec % 29) * 64 + (field_off & ~3)
    if pos + 8 <= len(b):
        struct.pack_into("<Q", b, pos, value)
    _parse_or_elferror(bytes(b))
