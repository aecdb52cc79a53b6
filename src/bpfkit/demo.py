"""``make demo``: show bpfkit working on this machine in a few seconds.

Builds a counting program with the assembler, runs it in the kernel with
BPF_PROG_TEST_RUN, reads the count back from its map, and prints a table of the
BPF programs loaded in the kernel (what ``bpfkit prog list`` shows).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import asm, introspect
from ._consts import HelperId, MapType, ProgramType
from .errors import BpfkitError
from .maps import Map
from .program import Program


def counting_program(counter: Map) -> list[asm.Instruction]:
    return asm.assemble([
        asm.st_mem(asm.BPF_W, asm.R10, -4, 0),          # u32 key = 0
        asm.mov64_reg(asm.R2, asm.R10),
        asm.alu64_imm(asm.BPF_ADD, asm.R2, -4),
        asm.ld_map_fd(asm.R1, counter.fd),
        asm.call(HelperId.map_lookup_elem),             # v = lookup(counter, &key)
        asm.jmp_imm(asm.BPF_JEQ, asm.R0, 0, "out"),
        asm.mov64_imm(asm.R1, 1),
        asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, asm.R0, asm.R1, 0),  # __sync_fetch_and_add(v, 1)
        "out",
        asm.mov64_imm(asm.R0, 2),                       # XDP_PASS
        asm.exit(),
    ])


EXAMPLE = Path(__file__).resolve().parent / "examples" / "demo.bpf.c"
WORKLOAD = "ls / >/dev/null; cat /etc/hostname /etc/os-release >/dev/null; head -c 20000 " \
           "/etc/services >/dev/null; uname -a >/dev/null"


def main() -> int:
    print("== 1. bpfkit run: build a C program, load it, attach it, read what it saw ==")
    print(f"$ bpfkit run {EXAMPLE.relative_to(Path.cwd()) if EXAMPLE.is_relative_to(Path.cwd()) else EXAMPLE}"
          f" -- sh -c '{WORKLOAD}'\n", flush=True)
    from .run import run
    try:
        run(str(EXAMPLE), command=["sh", "-c", WORKLOAD])
    except BpfkitError as e:
        print(f"bpfkit demo: {e}", file=sys.stderr)
        return 1
    print("\n== 2. the same kernel interface from Python: an assembled program, test-run ==")
    try:
        with Map.create(MapType.ARRAY, 4, 8, 1, name="demo_count") as counter:
            insns = counting_program(counter)
            print("A BPF program built with bpfkit.asm:")
            print(asm.disassemble(insns))
            with Program.load(ProgramType.XDP, insns, name="demo_count") as prog:
                res = prog.test_run(data=bytes(64), repeat=1000)
                count = int.from_bytes(counter[0], "little")
                print(f"\nran it 1000 times in the kernel (BPF_PROG_TEST_RUN): returned {res.retval} "
                      f"(XDP_PASS), {res.duration_ns} ns per run, counter map = {count}")
                progs = introspect.programs()
        print(f"\nBPF programs loaded in the kernel while it ran ({len(progs)}):")
        print(f"{'ID':>6}  {'TYPE':<16} {'NAME':<16} {'TAG':<16} {'XLATED':>7} MAPS")
        for p in progs:
            t = p.type.name.lower() if hasattr(p.type, "name") else str(p.type)
            print(f"{p.id:>6}  {t:<16} {p.name:<16} {p.tag:<16} {p.xlated_size:>7} "
                  f"{','.join(map(str, p.map_ids))}")
    except BpfkitError as e:
        print(f"bpfkit demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
