"""Symbolization of kernel and user addresses, stack trace maps and folded output."""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bpfkit import Map, MapType, Program, ProgramType
from bpfkit import asm as A
from bpfkit.errors import BpfkitError
from bpfkit.symbolize import (
    KernelSymbols,
    ProcessSymbols,
    StackTraceMap,
    demangle,
    folded,
    kaddr,
    ksym,
    ksymname,
    usym,
)

pytestmark = pytest.mark.requires_root


def _kallsyms_entry(name: str) -> int:
    with open("/proc/kallsyms") as f:
        for line in f:
            p = line.split()
            if p[2] == name and p[1] in "tT":
                return int(p[0], 16)
    raise AssertionError(f"{name} not in kallsyms")


def test_kernel_symbol_of_known_address() -> None:
    addr = _kallsyms_entry("schedule")
    assert addr != 0, "kallsyms addresses hidden (kptr_restrict)"
    assert kaddr("schedule") == addr
    assert ksym(addr) == "schedule"
    assert ksym(addr + 0x10) == "schedule+0x10"
    assert ksym(addr + 0x10, show_offset=False) == "schedule"
    assert ksymname(addr + 1) == "schedule"
    assert ksym(1) == "[unknown]"
    ks = KernelSymbols()
    assert len(ks) > 1000
    s = ks.resolve(addr + 3)
    assert s is not None and (s.name, s.address, s.offset) == ("schedule", addr, 3)


def test_libc_getpid_of_this_process() -> None:
    libc = ctypes.CDLL("libc.so.6")
    addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    assert addr
    name = usym(addr, os.getpid(), show_module=True)
    assert name.split("+")[0].split()[0] in ("getpid", "__getpid"), name
    assert "libc" in name
    ps = ProcessSymbols(os.getpid())
    s = ps.resolve(addr + 2)
    assert s is not None and s.offset == 2
    found = ps.address("libc.so.6", s.name)
    assert found == addr
    assert usym(0x10, os.getpid()) == "[unknown]"
    with pytest.raises(BpfkitError):
        ProcessSymbols(1 << 30)


C_SRC = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int bpfkit_target_fn(int x) { return x * 3 + 1; }
int main(void) {
    printf("%p\n", (void *)bpfkit_target_fn);
    fflush(stdout);
    char c;
    return read(0, &c, 1) < 0 ? bpfkit_target_fn(1) : 0;
}
"""


def test_user_symbol_in_gcc_built_pie(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "t.c"
    src.write_text(C_SRC)
    exe = tmp_path / "target"
    subprocess.run([gcc, "-O1", "-fPIE", "-pie", "-o", str(exe), str(src)], check=True)
    p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        addr = int(p.stdout.readline(), 16)
        assert usym(addr, p.pid) == "bpfkit_target_fn"
        assert usym(addr + 4, p.pid, show_module=True) == "bpfkit_target_fn+0x4 [target]"
        assert ProcessSymbols(p.pid).address("/target", "bpfkit_target_fn") == addr
    finally:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(5)
        if p.stdout is not None:
            p.stdout.close()


def test_stack_trace_map_kernel_stack_from_get_stackid() -> None:
    with Map.create(MapType.STACK_TRACE, 4, 8 * 127, 64, name="stacks") as st, \
            Map.create(MapType.ARRAY, 4, 8, 1, name="ids") as ids:
        insns = [
            A.ld_map_fd(A.R2, st.fd), A.mov64_imm(A.R3, 0), A.call("get_stackid"),
            A.stx_mem(A.BPF_DW, A.R10, A.R0, -8),
            A.st_mem(A.BPF_W, A.R10, -12, 0),
            A.ld_map_fd(A.R1, ids.fd), A.mov64_reg(A.R2, A.R10), A.alu64_imm(A.BPF_ADD, A.R2, -12),
            A.mov64_reg(A.R3, A.R10), A.alu64_imm(A.BPF_ADD, A.R3, -8), A.mov64_imm(A.R4, 0),
            A.call("map_update_elem"),
            A.mov64_imm(A.R0, 0), A.exit(),
        ]
        with Program.load(ProgramType.RAW_TRACEPOINT, insns, name="stk") as prog:
            prog.test_run(context=struct.pack("<Q", 0))
        sid = struct.unpack("<q", ids[0])[0]
        assert sid >= 0, f"bpf_get_stackid failed: {sid}"
        stm = StackTraceMap(st)
        addrs = stm.stack(sid)
        assert addrs and all(a >= 0xFFFF800000000000 for a in addrs)
        names = stm.kernel_stack(sid)
        assert any("bpf" in n for n in names), names
        assert sid in stm.ids()
        assert stm.stack(-14) == []
        text = folded([(names, 3), (names, 2)])
        assert text.endswith(" 5") and text.split(";")[0] == names[-1]
        stm.clear()
        assert stm.ids() == []
    with Map.create(MapType.ARRAY, 4, 8, 1) as m, pytest.raises(BpfkitError):
        StackTraceMap(m)


def test_folded_and_demangle() -> None:
    out = folded({("leaf", "mid", "main"): 2, ("other", "main"): 1})
    assert out.splitlines() == ["main;mid;leaf 2", "main;other 1"]
    assert folded([(["a;b", ""], 1)], leaf_first=False) == "a:b;[unknown] 1"
    assert demangle("plain") == "plain"
    if shutil.which("c++filt"):
        assert demangle("_ZN3foo3barEv") == "foo::bar()"
    else:
        assert demangle("_ZN3foo3barEv") == "_ZN3foo3barEv"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
