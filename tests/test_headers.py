"""BPF C written against a current libbpf compiles with `bpfkit build` on Debian 12, whose
libbpf-dev 1.1 headers lack BPF_URETPROBE, bpf_for, bpf_core_cast...: bpfkit's overlay
headers (src/bpfkit/include/bpf) add them. The programs are then loaded and run."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import bpfkit
from bpfkit.build import INCLUDE_DIR, compile_bpf

BPF = Path(__file__).resolve().parent / "bpf"
root = pytest.mark.requires_root


def _need_clang() -> None:
    if not (shutil.which("clang-19") or shutil.which("clang")):
        pytest.skip("clang is not installed (make test installs clang-19)")


def test_plain_system_headers_lack_what_the_overlay_adds(tmp_path: Path) -> None:
    """The reason the overlay exists: without it, this source does not compile here."""
    _need_clang()
    src = tmp_path / "u.bpf.c"
    src.write_text('#include <linux/bpf.h>\n#include <asm/ptrace.h>\n#include <bpf/bpf_helpers.h>\n'
                   '#include <bpf/bpf_tracing.h>\n'
                   'SEC("uretprobe") int BPF_URETPROBE(r, int ret) { return 0; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    clang = shutil.which("clang-19") or shutil.which("clang")
    assert clang
    base = [clang, "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86",
            "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(tmp_path / "u.o")]
    plain = subprocess.run(base, capture_output=True, text=True)
    if plain.returncode == 0:
        pytest.skip("the system libbpf headers already define BPF_URETPROBE (libbpf >= 1.2)")
    with_overlay = subprocess.run(base[:1] + [f"-I{INCLUDE_DIR}"] + base[1:],
                                  capture_output=True, text=True)
    assert with_overlay.returncode == 0, with_overlay.stderr


@root
def test_modern_libbpf_program_builds_loads_and_runs(tmp_path: Path) -> None:
    _need_clang()
    obj = compile_bpf(BPF / "modern_libbpf.bpf.c", tmp_path / "modern.bpf.o")
    spec = bpfkit.CollectionSpec.from_file(str(obj))
    spec.programs["ksys_getppid"].autoload = False  # kprobes: not on every kernel
    spec.set_constants({"targ_tgid": os.getpid()})
    with spec.load() as coll:
        res = coll.programs["loops"].test_run()
        assert res.retval == 1                      # add_one(ctx, 0) through __arg_ctx
        v = coll.variables
        assert v["loop_sum"].value == sum(range(10))  # bpf_for(i, 0, 10)
        assert v["repeats"].value == 5                # bpf_repeat(5)
        assert v["have_rdonly_cast"].value == 1
        assert v["cast_pid"].value == os.getpid()     # bpf_core_cast(task)->tgid
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        with coll.programs["getpid_ret"].attach_uprobe("libc.so.6", "getpid", retprobe=True):
            for _ in range(7):
                libc.getpid()
        assert v["uret_calls"].value == 7
        assert v["last_ret"].value == os.getpid()


def test_readme_first_compile_command_works_as_written(tmp_path: Path) -> None:
    """The README's hand-written clang line compiles the README's first program."""
    import re
    _need_clang()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    cmd = re.search(r"`(clang-19 -target bpf [^`]*prog\.bpf\.c)`", readme)
    prog = re.search(r"```c\n(// prog\.bpf\.c\n.*?)```", readme, re.S)
    assert cmd and prog, "README lost its first program or its compile command"
    (tmp_path / "prog.bpf.c").write_text(prog.group(1))
    r = subprocess.run(cmd.group(1), shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    spec = bpfkit.CollectionSpec.from_file(str(tmp_path / "prog.bpf.o"))
    assert "on_getppid" in spec.programs
