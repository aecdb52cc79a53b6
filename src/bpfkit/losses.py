"""Counting the events a BPF program failed to hand over, for any object.

A full ring buffer does not drop records on the consumer's side: it fails the *producer*
(``bpf_ringbuf_reserve`` returns NULL, ``bpf_ringbuf_output`` a negative error), and a
program that ignores the failure loses the event silently.  Perf buffers are different:
the kernel counts their losses itself (PERF_RECORD_LOST, read by
:class:`bpfkit.readers.PerfBuffer`).

:func:`count_ringbuf_losses` rewrites a :class:`~bpfkit.spec.CollectionSpec` so that every
call site of those two helpers is followed by::

    if r0 <cond> 0 goto +4          ; reserve: r0 != 0 is success; output: r0 == 0
    r1 = &.bpfkit_lost[0]           ; ld_imm64 of a map value (two slots)
    r2 = 1
    lock *(u64 *)(r1 + 0) += r2     ; atomic add

The helper call already clobbered r1-r5 (the verifier treats them as uninitialised after
a call, so compiled code never reads them there) and r0 is left as the helper returned
it, so the program's behaviour is unchanged.  ``bpf_perf_event_output`` call sites get
the same block on a second counter: the kernel's own PERF_RECORD_LOST count is per CPU but
is written only when a later record fits, so the losses at the end of a run would stay
unreported.  The counters are the single element of a
hidden ARRAY map, addressed directly (BPF_PSEUDO_MAP_VALUE), which needs no free stack
slot for a lookup key; an atomic add keeps it exact across CPUs.  Jump offsets, bpf-to-bpf
calls (recomputed from the function markers), func_info, line_info and CO-RE relocation
offsets are moved with the instructions.

It is off in :func:`bpfkit.load` (``count_ringbuf_losses=False``), so loaded programs
have exactly libbpf's instructions, and on under ``bpfkit run`` and ``bpfkit export``.
"""

from __future__ import annotations

from typing import Any

from . import asm
from ._consts import HelperId, MapType

__all__ = ["LOST_MAP", "count_ringbuf_losses", "ringbuf_lost", "perfbuf_lost"]

#: the hidden counter map (a leading dot keeps it out of map listings, as for .bss)
LOST_MAP = ".bpfkit_lost"

_RESERVE = int(HelperId.ringbuf_reserve)
_OUTPUT = int(HelperId.ringbuf_output)
_PERF_OUTPUT = int(HelperId.perf_event_output)
#: counter slot (byte offset in the map value) per helper: ring buffers, perf buffers
_SLOT = {_RESERVE: 0, _OUTPUT: 0, _PERF_OUTPUT: 8}


def _counter_block(helper: int) -> list[asm.Instruction]:
    # success skips the counter: reserve returns a pointer, the outputs return 0
    cond = asm.BPF_JNE if helper == _RESERVE else asm.BPF_JEQ
    ld = asm.ld_map_value(asm.R1, LOST_MAP, _SLOT[helper])
    ld.meta["offset"] = _SLOT[helper]
    return [asm.jmp_imm(cond, asm.R0, 0, 4), ld,
            asm.mov64_imm(asm.R2, 1),
            asm.atomic_op(asm.BPF_DW, asm.BPF_ADD, asm.R1, asm.R2, 0)]


def _jump_offset(ins: asm.Instruction) -> int:
    if ins.cls == asm.BPF_JMP32 and ins.op == asm.BPF_JA:
        return ins.imm  # gotol: 32-bit offset in imm
    return ins.off


def _set_jump_offset(ins: asm.Instruction, off: int, prog: str) -> None:
    if ins.cls == asm.BPF_JMP32 and ins.op == asm.BPF_JA:
        ins.imm = off
        return
    if not -(1 << 15) <= off < (1 << 15):
        from .errors import LoadError
        raise LoadError(f"program {prog!r}: counting ring buffer losses moves a jump out of "
                        "its 16-bit range; load it without count_ringbuf_losses")
    ins.off = off


def _instrument_program(p: Any) -> int:
    """Insert the counter after each ringbuf reserve/output call of ``p``; returns how many."""
    old: list[asm.Instruction] = p.instructions
    new: list[asm.Instruction] = []
    newpos: dict[int, int] = {}  # old slot -> new slot of the same instruction
    slot = nslot = sites = 0
    for ins in old:
        newpos[slot] = nslot
        new.append(ins)
        nslot += ins.size
        if ins.is_helper_call and ins.imm in _SLOT:
            block = _counter_block(ins.imm)
            new.extend(block)
            nslot += sum(b.size for b in block)
            sites += 1
        slot += ins.size
    newpos[slot] = nslot
    if not sites:
        return 0
    slot = 0
    for ins in old:
        if ins.is_jump and ins.ref_kind is None:
            target = slot + 1 + _jump_offset(ins)
            if target in newpos:
                _set_jump_offset(ins, newpos[target] - newpos[slot] - 1, p.name)
        slot += ins.size
    for recs in (p.func_info, p.line_info, p.core_relos):
        for r in recs:
            r.insn_off = newpos.get(r.insn_off // 8, r.insn_off // 8) * 8
    p.instructions = new
    return sites


def count_ringbuf_losses(spec: Any) -> int:
    """Instrument every program of ``spec`` (in place) to count failed
    ``bpf_ringbuf_reserve``/``bpf_ringbuf_output`` calls in :data:`LOST_MAP`; returns the
    number of call sites.  Adds the map only when there is a call site."""
    from .spec import MapSpec
    sites = sum(_instrument_program(p) for p in spec.programs.values())
    if sites and LOST_MAP not in spec.maps:
        spec.maps[LOST_MAP] = MapSpec(name=LOST_MAP, type=int(MapType.ARRAY), key_size=4,
                                      value_size=16, max_entries=1, kernel_name="bpfkit_lost")
    return sites


def _counter(coll: Any, slot: int) -> int | None:
    m = getattr(coll, "maps", {}).get(LOST_MAP)
    if m is None:
        return None
    raw = m[0]
    if isinstance(raw, (bytes, bytearray)):
        return int.from_bytes(raw[slot:slot + 8], "little")
    return int(raw or 0) if slot == 0 else 0


def ringbuf_lost(coll: Any) -> int | None:
    """Failed ring buffer reserve/output calls so far in a loaded collection, or None if
    it was not instrumented."""
    return _counter(coll, 0)


def perfbuf_lost(coll: Any) -> int | None:
    """Failed ``bpf_perf_event_output`` calls so far, or None if not instrumented.  Exact
    where the kernel's PERF_RECORD_LOST can trail: the kernel reports a loss only once the
    next record fits, so losses at the end of a run stay pending there."""
    return _counter(coll, 8)
