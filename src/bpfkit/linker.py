"""Linking instructions, pure: copying a program's instructions and recomputing the
bpf-to-bpf call and callback offsets after subprograms are appended (cilium's linker.go)."""

from __future__ import annotations

from . import asm
from .errors import SpecError


def _clone(i: asm.Instruction) -> asm.Instruction:
    return asm.Instruction(i.opcode, i.dst, i.src, i.off, i.imm, ref=i.ref, ref_kind=i.ref_kind,
                           source=i.source, meta=dict(i.meta))


def _fix_calls(insns: list[asm.Instruction], prog_name: str) -> None:
    """Recompute bpf-to-bpf call / callback offsets from ``meta["func"]`` markers."""
    starts: dict[str, int] = {}
    slots: list[int] = []
    slot = 0
    for ins in insns:
        slots.append(slot)
        name = ins.meta.get("func")
        if name is not None and name not in starts:
            starts[name] = slot
        slot += ins.size
    for ins, s in zip(insns, slots, strict=True):
        if ins.ref_kind not in ("call", "func"):
            continue
        target = starts.get(ins.ref or "")
        if target is None:
            raise SpecError(f"program {prog_name!r}: subprogram {ins.ref!r} is not part of it")
        if ins.ref_kind == "call":
            ins.src = asm.BPF_PSEUDO_CALL
            ins.imm = target - s - 1
        else:
            ins.src = asm.BPF_PSEUDO_FUNC
            ins.imm = (target - s - 1) & 0xFFFFFFFF
