"""The C header writer (bpfkit.btf.cdump) and ``bpfkit btf dump``: the kernel's BTF as a
vmlinux.h that compiles a CO-RE program exactly like bpftool's header does."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BPF_DIR, build_bpf, clang

from bpfkit.btf import Spec, Struct, Union, parse_btf_ext
from bpfkit.btf.cdump import CDumper, dump_c, dump_raw
from bpfkit.cli import main as cli_main

VMLINUX = "/sys/kernel/btf/vmlinux"
needs_kernel_btf = pytest.mark.skipif(not os.path.exists(VMLINUX),
                                      reason="kernel has no BTF (CONFIG_DEBUG_INFO_BTF off)")
CFLAGS = ["-target", "bpf", "-g", "-O2", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu"]


def _cc(src: Path, inc: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([clang(), *CFLAGS, "-I", str(inc), *extra, "-c", str(src), "-o",
                           str(out)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def kernel_dump(tmp_path_factory: pytest.TempPathFactory) -> tuple[CDumper, Path, float]:
    spec = Spec.from_bytes(Path(VMLINUX).read_bytes(), lazy=True)  # fresh: time all decoding
    t = time.perf_counter()
    d = CDumper(spec)
    text = d.dump()
    took = time.perf_counter() - t
    out = tmp_path_factory.mktemp("mine")
    (out / "vmlinux.h").write_text(text)
    return d, out, took


@needs_kernel_btf
def test_header_shape_and_speed(kernel_dump: tuple[CDumper, Path, float]) -> None:
    d, out, took = kernel_dump
    text = (out / "vmlinux.h").read_text()
    print(f"\nvmlinux.h: {len(text.splitlines())} lines in {took:.2f} s")
    assert took < 10
    assert text.startswith("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n")
    assert "#pragma clang attribute push (__attribute__((preserve_access_index)), " \
           "apply_to = record)" in text
    assert text.rstrip().endswith("#endif /* __VMLINUX_H__ */")
    assert "struct task_struct {" in text and "struct task_struct;" in text
    assert "} __attribute__((packed));" in text
    assert "long: 64;" in text                     # explicit padding
    assert "typedef __int128 unsigned __u128;" in text or "__int128" in text
    assert "ULL," in text                          # enum64 values
    assert "___2" in text                          # colliding names renamed
    # a struct is defined before any struct that embeds it
    assert text.index("struct list_head {") < text.index("struct task_struct {")


@needs_kernel_btf
def test_layout_of_every_kernel_struct(kernel_dump: tuple[CDumper, Path, float],
                                       tmp_path: Path) -> None:
    """clang must agree with BTF on the size and member offsets of every named struct/union."""
    d, out, _ = kernel_dump
    spec = d.spec
    lines = ['#include "vmlinux.h"']
    n = 0
    for tid in range(1, len(spec)):
        if spec.kind_of(tid) not in (4, 5):
            continue
        t = spec.type(tid)
        if not t.name:
            continue
        kw = "struct" if isinstance(t, Struct) else "union"
        nm = d.c_name(tid)
        lines.append(f'_Static_assert(sizeof({kw} {nm}) == {t.size}, "{nm}");')
        assert isinstance(t, (Struct, Union))
        for m in t.members:
            if m.name and not m.bitfield_size:
                lines.append(f"_Static_assert(__builtin_offsetof({kw} {nm}, {m.name}) == "
                             f'{m.bit_offset // 8}, "{nm}.{m.name}");')
                n += 1
    assert n > 10000
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    r = _cc(src, out, tmp_path / "layout.o", "-Werror")
    assert r.returncode == 0, r.stderr[-3000:]


def _btf_summary(obj: Path) -> tuple[list[tuple[str, str]], list[tuple[object, ...]]]:
    data = obj.read_bytes()
    from bpfkit.btf import elf_section
    spec = Spec.from_bytes(elf_section(data, ".BTF") or b"")
    types = sorted((spec.type(i).kind_name, spec.type(i).name) for i in spec.own_ids())
    ext = parse_btf_ext(elf_section(data, ".BTF.ext") or b"", spec)
    relos = []
    for sec, recs in sorted(ext.core_relos.items()):
        for r in recs:
            relos.append((sec, r.insn_off, int(r.kind), r.access_str,
                          spec.type(r.type_id).kind_name, spec.type(r.type_id).name))
    return types, relos


@needs_kernel_btf
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
def test_core_program_matches_bpftool_header(kernel_dump: tuple[CDumper, Path, float],
                                             tmp_path: Path) -> None:
    _, mine, _ = kernel_dump
    theirs = tmp_path / "bpftool"
    theirs.mkdir()
    with open(theirs / "vmlinux.h", "w") as f:
        subprocess.run(["bpftool", "btf", "dump", "file", VMLINUX, "format", "c"], stdout=f,
                       check=True)
    src = BPF_DIR / "core_vmlinux.bpf.c"
    objs = []
    for inc in (mine, theirs):
        obj = tmp_path / f"{inc.name}.o"
        r = _cc(src, inc, obj)
        assert r.returncode == 0, f"against {inc}: {r.stderr[-3000:]}"
        objs.append(obj)
    t_mine, r_mine = _btf_summary(objs[0])
    t_theirs, r_theirs = _btf_summary(objs[1])
    assert t_mine == t_theirs
    assert r_mine == r_theirs
    names = {n for _, n in t_mine}
    assert {"task_struct", "sk_buff", "skb_drop_reason", "bpf_map_type"} <= names
    kinds = {r[2] for r in r_mine}
    assert len(r_mine) >= 10 and {0, 2, 8, 9, 10, 11} <= kinds  # offsets, exists, sizes, enums


def test_dump_of_clang_object_compiles(tmp_path: Path) -> None:
    obj = build_bpf("codec_types.bpf.c", out_dir=tmp_path)
    spec = Spec.load_file(obj)
    (tmp_path / "vmlinux.h").write_text(dump_c(spec))
    lines = ['#include "vmlinux.h"']
    for name in ("event", "flags", "mixed", "pkt", "point", "inner"):
        t = spec.find(name, Struct)
        lines.append(f'_Static_assert(sizeof(struct {name}) == {t.size}, "{name}");')
        for m in t.members:
            if m.name and not m.bitfield_size:
                lines.append(f"_Static_assert(__builtin_offsetof(struct {name}, {m.name}) == "
                             f'{m.bit_offset // 8}, "{name}.{m.name}");')
    lines.append("struct mixed g_m; struct flags g_f; struct pkt g_p; enum big g_b;")
    src = tmp_path / "use.c"
    src.write_text("\n".join(lines) + "\n")
    r = _cc(src, tmp_path, tmp_path / "use.o", "-Werror")
    assert r.returncode == 0, r.stderr
    # the re-compiled object describes the same structs
    again = Spec.load_file(tmp_path / "use.o")
    for name in ("mixed", "flags", "pkt"):
        a, b = spec.find(name, Struct), again.find(name, Struct)
        assert a.size == b.size
        assert [(m.name, m.bit_offset, m.bitfield_size) for m in a.members] == \
               [(m.name, m.bit_offset, m.bitfield_size) for m in b.members]


def test_selected_types_and_tricky_declarators(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text(r"""
typedef struct node node_t;
struct node { node_t *next; struct other *o; int (*cb)(struct node *, const char *, ...); };
struct other { struct node n; int (*arr)[4]; void (*fns[2])(int); const char *const names[3];
               volatile unsigned long long v; };
union dup { int a; };
struct dup_holder { union dup u; };
enum small : unsigned char { S0, S1 };
struct with_small { enum small s; char c; };
typedef int fn_t(int);
struct uses { fn_t *f; struct { int x : 3; int : 0; char y; } anon; __int128 big; _Bool b; };
struct uses u; struct other o; struct dup_holder dh; struct with_small ws;
""")
    obj = tmp_path / "t.o"
    r = subprocess.run([clang(), "-target", "bpf", "-g", "-O2", "-c", str(src), "-o", str(obj)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    spec = Spec.load_file(obj)
    text = dump_c(spec)
    assert "typedef struct node node_t;" in text
    assert "int (*arr)[4];" in text and "void (*fns[2])(int);" in text
    assert "const char * const names[3];" in text or "const char *const names[3];" in text
    assert "int (*cb)(struct node *, const char *, ...);" in text
    assert "typedef int fn_t(int);" in text
    assert "__attribute__((mode(byte)))" in text
    (tmp_path / "vmlinux.h").write_text(text)
    use = tmp_path / "use.c"
    use.write_text('#include "vmlinux.h"\n'
                   '_Static_assert(sizeof(enum small) == 1, "");\n'
                   '_Static_assert(sizeof(struct with_small) == 2, "");\n'
                   '_Static_assert(sizeof(struct uses) == 48, "");\n'
                   "struct uses u2; struct other o2;\n")
    r = _cc(use, tmp_path, tmp_path / "use.o", "-Werror")
    assert r.returncode == 0, r.stderr + text
    # only what one type needs
    part = dump_c(spec, types=["other"])
    assert "struct other {" in part and "struct node {" in part and "struct uses" not in part


@needs_kernel_btf
def test_cli_btf_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = build_bpf("codec_types.bpf.c", out_dir=tmp_path)
    assert cli_main(["btf", "dump", str(obj), "--format", "raw"]) == 0
    raw = capsys.readouterr().out
    assert "STRUCT 'event' size=32 vlen=4" in raw
    assert raw == dump_raw(Spec.load_file(obj))
    out = tmp_path / "v.h"
    assert cli_main(["btf", "dump", str(obj), "-o", str(out)]) == 0
    assert "struct event {" in out.read_text()
    assert cli_main(["btf", "dump", "--type", "task_struct", "-o", str(tmp_path / "k.h")]) == 0
    assert "struct task_struct {" in (tmp_path / "k.h").read_text()
    assert cli_main(["btf", "dump", str(tmp_path / "missing")]) == 1
    assert "cannot read BTF file" in capsys.readouterr().err


def test_type_tags_compile_into_btf(tmp_path: Path) -> None:
    from bpfkit.btf import Int, Member, Pointer, TypeTag
    spec = Spec.build([Int(4, 1, name="int"), TypeTag(1, name="user"), Pointer(2),
                       Struct(8, [Member("p", 3, 0)], name="tagged")])
    (tmp_path / "vmlinux.h").write_text(dump_c(spec))
    use = tmp_path / "use.c"
    use.write_text('#include "vmlinux.h"\nstruct tagged g;\n')
    r = _cc(use, tmp_path, tmp_path / "use.o", "-Werror")
    assert r.returncode == 0, r.stderr
    out = Spec.load_file(tmp_path / "use.o")
    assert [t.name for t in out if t.kind_name == "TYPE_TAG"] == ["user"]
    r = _cc(use, tmp_path, tmp_path / "plain.o", "-Werror", "-DBPF_NO_PRESERVE_ACCESS_INDEX")
    assert r.returncode == 0, r.stderr
    assert not [t for t in Spec.load_file(tmp_path / "plain.o") if t.kind_name == "TYPE_TAG"]
