"""Hostile input to the parsers and the command line: each case found exploding once.

Every malformed input must end in a ParseError that names the problem, with time and memory
proportional to the input; user-named paths that are not regular files are refused at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit import CollectionSpec
from bpfkit.btf import types as T
from bpfkit.btf.cdump import dump_c, dump_raw
from bpfkit.btf.ext import CoreRelo
from bpfkit.btf.parse import Spec, elf_section
from bpfkit.elf import ElfFile
from bpfkit.errors import BTFError, ElfError, ParseError, SpecError
from bpfkit.export import yamlite

ROOT = Path(__file__).resolve().parent.parent
OBJ = ROOT / "src" / "bpfkit" / "tools" / "bpf" / "opensnoop.bpf.o"
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
INT = T.Int(size=4, encoding=1, bits=32, name="int")


def bpfkit(*args: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------- BTF

def test_btf_huge_offsets_give_output_proportional_to_input() -> None:
    """A ~80-byte BTF declaring a 4 GiB struct with a member near its end used to make the
    padding logic write hundreds of millions of `long: 64;` lines (1.4 GB, 9 s)."""
    raw = Spec.build([INT, T.Struct(name="big", size=0xFFFFFFFF, members=[
        T.Member("a", 1, 0), T.Member("b", 1, 0xFFFFFF00)])]).to_bytes()
    assert len(raw) < 100
    text = dump_c(Spec.from_bytes(raw))
    assert len(text) < 4096
    assert "char __pad_4[" in text and "int b;" in text
    dump_raw(Spec.from_bytes(raw))


CYCLES = {
    "typedef -> pointer -> typedef": [INT, T.Typedef(type=3, name="A"), T.Pointer(type=2)],
    "typedef of itself": [INT, T.Typedef(type=2, name="A")],
    "const of itself": [INT, T.Const(type=2), T.Typedef(type=2, name="C")],
    "const -> typedef -> const": [INT, T.Const(type=3), T.Typedef(type=2, name="B"),
                                  T.Struct(name="s", size=4, members=[T.Member("m", 3, 0)])],
    "pointer to itself": [INT, T.Pointer(type=2), T.Typedef(type=2, name="P")],
    "array of itself": [INT, T.Array(type=2, index_type=1, nelems=2), T.Typedef(type=2, name="X")],
    "struct containing itself": [INT, T.Struct(name="s", size=4, members=[T.Member("m", 2, 0)])],
}


@pytest.mark.parametrize("name", sorted(CYCLES))
def test_btf_reference_cycles_are_errors_not_recursion(name: str) -> None:
    spec = Spec.from_bytes(Spec.build(CYCLES[name]).to_bytes())
    with pytest.raises(BTFError, match="cycle|itself|deeper"):
        dump_c(spec)
    for tid in range(1, len(spec)):  # the other walks over types are bounded too
        for walk in (spec.sizeof, spec.alignof, spec.type_name):
            try:
                walk(tid)
            except BTFError:
                pass


def test_btf_deep_but_acyclic_nesting_is_refused_not_recursed() -> None:
    chain = [INT] + [T.Pointer(type=i) for i in range(1, 3000)] + [
        T.Typedef(type=3000, name="deep")]
    with pytest.raises(BTFError, match="nested deeper than"):
        dump_c(Spec.build(chain))


def test_btf_alignment_of_a_shared_struct_dag_is_linear() -> None:
    """Each struct has two members of the previous struct: 2^60 paths, 61 types."""
    types: list[T.BTFType] = [INT, T.Struct(name="s0", size=8, members=[
        T.Member("a", 1, 0), T.Member("b", 1, 32)])]
    for i in range(1, 61):
        types.append(T.Struct(name=f"s{i}", size=8, members=[
            T.Member("a", i + 1, 0), T.Member("b", i + 1, 0)]))
    spec = Spec.build(types)
    assert spec.alignof(len(spec) - 1) == 4


def test_btf_ext_malformed_access_string() -> None:
    relo = CoreRelo(insn_off=8, type_id=1, access_str="0:x:1", kind=0)
    with pytest.raises(BTFError, match="malformed access string"):
        relo.accessors  # noqa: B018


# ------------------------------------------------------------------------------- ELF

def _with_shoff(data: bytes, shoff: int) -> bytes:
    return data[:0x28] + struct.pack("<Q", shoff) + data[0x30:]


@pytest.mark.parametrize("shoff", [2**64 - 64, 2**64 - 1, 2**63, 2**32])
def test_elf_section_table_offset_near_2_64(shoff: int) -> None:
    data = _with_shoff(OBJ.read_bytes(), shoff)
    with pytest.raises(ParseError):
        elf_section(data, ".BTF")  # one ELF reader: the BTF loader uses bpfkit.elf
    with pytest.raises(ElfError):
        ElfFile(data)
    with pytest.raises(ParseError):
        CollectionSpec.from_bytes(data)


def test_collection_spec_refuses_a_huge_bss_without_allocating_it() -> None:
    data = bytearray(OBJ.read_bytes())
    elf = ElfFile(bytes(data))
    bss = elf.section(".bss")
    assert bss is not None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    struct.pack_into("<Q", data, shoff + bss.index * 64 + 32, 1 << 60)  # sh_size
    with pytest.raises(SpecError, match=r"\.bss declares 1152921504606846976 bytes"):
        CollectionSpec.from_bytes(bytes(data))


def test_spec_error_is_a_parse_error() -> None:
    """One class to catch for "this object is bad", whichever layer noticed."""
    assert issubclass(SpecError, ParseError)


# ------------------------------------------------------------------------------- YAML

def test_yaml_nesting_is_capped_without_recursion_error() -> None:
    with pytest.raises(yamlite.YamlError, match="nesting deeper than"):
        yamlite.loads("a: " + "[" * 10000)
    deep = "\n".join(" " * i + f"k{i}:" for i in range(200))
    with pytest.raises(yamlite.YamlError, match="nesting deeper than"):
        yamlite.loads(deep)
    with pytest.raises(yamlite.YamlError, match="5000 digits"):
        yamlite.loads("n: " + "1" * 5000)


# ------------------------------------------------------------------- files users name

@pytest.mark.parametrize("cmd", [["btf", "dump"], ["run"]])
def test_cli_refuses_character_devices_at_once(cmd: list[str]) -> None:
    p = bpfkit(*cmd, "/dev/zero", timeout=30)
    assert p.returncode == 1, p.stderr
    assert "/dev/zero: it is a character device, not a regular file" in p.stderr
    assert "Traceback" not in p.stderr


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "obj.fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="it is a FIFO"):
        CollectionSpec.from_file(fifo)
    with pytest.raises(BTFError, match="it is a FIFO"):
        Spec.load_file(fifo)
    with pytest.raises(yamlite.YamlError, match="it is a FIFO"):
        yamlite.load(str(fifo))


# ---------------------------------------------------------------------------- printing

def test_non_utf8_names_print_escaped(tmp_path: Path) -> None:
    spec = Spec.build([INT, T.Struct(name="caf\udcff", size=4,
                                     members=[T.Member("m\udce9", 1, 0)])])
    f = tmp_path / "names.btf"
    f.write_bytes(spec.to_bytes())
    assert b"caf\xff" in f.read_bytes()
    for fmt in ("c", "raw"):
        p = bpfkit("btf", "dump", str(f), "--format", fmt, env={"PYTHONIOENCODING": "ascii"})
        assert p.returncode == 0, p.stderr
        assert "caf\\udcff" in p.stdout
    out = tmp_path / "out.h"
    p = bpfkit("btf", "dump", str(f), "-o", str(out), env={"LC_ALL": "C"})
    assert p.returncode == 0, p.stderr
    assert "caf\\udcff" in out.read_text()


def test_output_into_a_closed_pipe_exits_quietly() -> None:
    """`bpfkit btf dump --json | head -1`: no "Broken pipe" or traceback, the SIGPIPE exit
    code (it was exit 1 with an error message)."""
    r, w = os.pipe()
    proc = subprocess.Popen([BPFKIT, "btf", "dump", "--json"], stdout=w,
                            stderr=subprocess.PIPE, text=True)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        assert reader.read(100)
    _, err = proc.communicate(timeout=120)
    assert err == ""
    assert proc.returncode == 128 + signal.SIGPIPE


def test_elf_open_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "binary"
    os.mkfifo(fifo)
    with pytest.raises(ElfError, match="not a regular file"):
        ElfFile.open(fifo)
    with pytest.raises(ElfError, match="cannot open"):
        ElfFile.open(tmp_path / "missing")


def test_ld_so_cache_string_scan_is_bounded() -> None:
    """Every entry pointing into one long unterminated run was a quadratic scan."""
    from bpfkit.attach.uprobe import parse_ld_so_cache
    n = 2000
    head = b"glibc-ld.so.cache1.1" + struct.pack("<II", n, 0) + bytes(20)
    table = b"".join(struct.pack("<iIIIQ", 0x303, 48 + n * 24, 48 + n * 24, 0, 0)
                     for _ in range(n))
    data = head + table + b"a" * (1 << 20)
    with pytest.raises(ParseError, match="no NUL within 4096 bytes"):
        parse_ld_so_cache(data)


def test_fuzz_findings_trace_line_with_huge_numbers_and_config_types() -> None:
    """Found by `make fuzz`: a 4,400-digit pid/tgid in a trace_pipe line (ValueError from
    int()), and `constants: 5` in an exporter config (TypeError)."""
    from bpfkit.export.config import ConfigError, parse_config
    from bpfkit.readers.tracepipe import parse_line
    for line in ("bash-1" + "1" * 4400 + " [001] d..31 1.5: bpf_trace_printk: x",
                 "bash-12 (" + "1" * 4400 + ") [001] d..31 1.5: bpf_trace_printk: x"):
        with pytest.raises(ParseError, match="not a trace_pipe event line"):
            parse_line(line)
    assert parse_line("bash-12 (  12) [001] d..31 1.5: bpf_trace_printk: x").tgid == 12
    with pytest.raises(ConfigError, match="constants"):
        parse_config("object: x.bpf.o\nconstants: 5\n", "<t>", base_dir="/", env={})
