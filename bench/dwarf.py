"""Speed of the DWARF reader: parse an object's DWARF and convert its types to BTF.

The input is an object whose DWARF describes ``struct task_struct`` and everything it
reaches (thousands of types, as a CO-RE tool gets from vmlinux.h); the reference is
``llvm-dwarfdump --debug-info`` on the same file (C++, printing to /dev/null).

Run: .venv/bin/python bench/dwarf.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bpfkit.build import compile_bpf
from bpfkit.dwarf import DebugInfo
from bpfkit.elf import ElfFile

SRC = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tp_btf/sched_switch")
int on_switch(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	int pid = 0;
	bpf_probe_read_kernel(&pid, sizeof(pid), &t->pid);
	return pid;
}
char LICENSE[] SEC("license") = "GPL";
"""


def best(fn: object, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "task.bpf.c"
        src.write_text(SRC)
        obj = compile_bpf(src, Path(d) / "task.o")
        data = obj.read_bytes()

        def parse() -> DebugInfo:
            return DebugInfo.from_elf(ElfFile(data, name=str(obj)))

        def convert() -> None:
            parse().to_btf()

        info = parse()
        ntypes = len(info.to_btf())
        t_parse, t_all = best(parse), best(convert)
        print(f"{obj.name}: {len(data) // 1024} KiB, {len(info.dies)} DIEs -> {ntypes} BTF types")
        print(f"  parse .debug_*           {t_parse * 1e3:7.1f} ms")
        print(f"  parse + convert to BTF   {t_all * 1e3:7.1f} ms")
        tool = shutil.which("llvm-dwarfdump-19") or shutil.which("llvm-dwarfdump")
        if tool:
            def dump() -> None:
                subprocess.run([tool, "--debug-info", str(obj)], stdout=subprocess.DEVNULL,
                               check=True)
            t_ref = best(dump)
            print(f"  llvm-dwarfdump --debug-info {t_ref * 1e3:5.1f} ms "
                  f"(ratio bpfkit/llvm {t_all / t_ref:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
