"""Which type the records of each ring and perf buffer have, found from the object alone.

Why: a libbpf-style tool declares ``struct event`` as a local, reserves or outputs
``sizeof(*e)`` bytes and never names the type anywhere a reader could see it.  The size
is in the instructions, though: at each ``bpf_ringbuf_reserve``/``bpf_ringbuf_output``/
``bpf_perf_event_output`` call the map and the size are constants loaded into argument
registers a few instructions before.  We track constant registers (and 8-byte stack
spills, as ``-O0`` code makes) through each basic block, collect the sizes per map, and
match them to the struct/union types of that size: first the types of the locals of the
functions that make the calls (the pointer the program writes through, from DWARF), then
the object's BTF, else its DWARF.  Exactly one candidate decides; several or none leave
that map as hex with a warning saying how to choose.

Pure: reads a :class:`~bpfkit.spec.CollectionSpec`, no kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import asm
from ._consts import HelperId, MapType
from .btf import Spec
from .btf import types as bt
from .btf.codec import decoder_for, find_type
from .errors import BpfkitError, ParseError

__all__ = ["CallSite", "RecordChoice", "call_sites", "choose_records", "parse_record_options",
           "safe_decoder"]

# helper -> (map argument register, size argument register)
_SIZE_ARGS: dict[int, tuple[int, int]] = {
    int(HelperId.ringbuf_reserve): (1, 2),
    int(HelperId.ringbuf_output): (1, 3),
    int(HelperId.perf_event_output): (2, 5),
    int(HelperId.ringbuf_reserve_dynptr): (1, 2),
}
_OUTPUT_MAPS = (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY)
PERF_PAD = 7
"""A perf sample's raw data is padded to 8 bytes with its u32 size: up to 7 extra bytes."""


@dataclass(slots=True, frozen=True)
class CallSite:
    """One call that writes records into a map: ``size`` is None when not a constant."""

    program: str
    function: str
    helper: str
    map: str
    size: int | None
    insn: int


@dataclass(slots=True)
class RecordChoice:
    """The record type chosen for one map, or why none was.

    ``spec``/``type_id`` name the type (in the object's BTF or the BTF built from its
    DWARF); ``warning`` is set when the map stays hex.
    """

    map: str
    sizes: list[int | None] = field(default_factory=list)
    spec: Spec | None = None
    type_id: int = 0
    name: str = ""
    size: int = 0
    source: str = ""  # "btf", "dwarf" or "option"
    warning: str | None = None
    candidates: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> bool:
        return self.spec is not None


# ----------------------------------------------------------------- instruction analysis
_Val = tuple[Any, ...]  # ("k", int) | ("map", name) | ("fp", off) | ("mv", map, off)


def _block_starts(insns: Sequence[asm.Instruction]) -> set[int]:
    """Instruction indexes where a basic block begins (jump targets, after jumps)."""
    slot_of: list[int] = []
    slot = 0
    for ins in insns:
        slot_of.append(slot)
        slot += ins.size
    index_of = {s: i for i, s in enumerate(slot_of)}
    starts: set[int] = set()
    for i, ins in enumerate(insns):
        if ins.is_jump:
            tgt = slot_of[i] + ins.size + ins.jump_offset
            if tgt in index_of:
                starts.add(index_of[tgt])
            starts.add(i + 1)
        elif ins.is_exit:
            starts.add(i + 1)
        if ins.meta.get("func"):
            starts.add(i)
    return starts


def _data_word(spec: Any, name: str, off: int) -> int | None:
    m = spec.maps.get(name)
    data = getattr(m, "data", None)
    if data is None or not 0 <= off <= len(data) - 8:
        return None
    return int.from_bytes(bytes(data[off:off + 8]), "little")


def call_sites(spec: Any) -> list[CallSite]:
    """Every call of a record-writing helper in ``spec``'s programs, with its map and size.

    ``spec`` is a :class:`~bpfkit.spec.CollectionSpec`.  Helpers called through a
    function pointer (``callx``, what ``-O0`` makes of libbpf's helper definitions) are
    recognised when the pointer was loaded from the object's data.
    """
    out: list[CallSite] = []
    for pname, prog in spec.programs.items():
        insns = prog.instructions
        starts = _block_starts(insns)
        regs: dict[int, _Val] = {}
        stack: dict[int, _Val] = {}
        func = pname
        for i, ins in enumerate(insns):
            f = ins.meta.get("func")
            if f:
                func = f
            if i in starts:
                regs, stack = {}, {}
            regs[10] = ("fp", 0)
            op, cls = ins.opcode, ins.cls
            if ins.is_ld_imm64:
                if ins.ref_kind == "map" and ins.ref:
                    regs[ins.dst] = ("map", ins.ref)
                elif ins.ref_kind == "map_value" and ins.ref:
                    regs[ins.dst] = ("mv", ins.ref, int(ins.meta.get("offset", ins.imm)))
                elif ins.ref is None:
                    regs[ins.dst] = ("k", ins.imm)
                else:
                    regs.pop(ins.dst, None)
                continue
            if ins.is_call or op == asm.BPF_JMP | asm.BPF_CALL | asm.BPF_X:
                hid: int | None = None
                if ins.is_helper_call:
                    hid = ins.imm
                elif not ins.is_call:  # callx: target in dst
                    v = regs.get(ins.dst)
                    hid = v[1] if v and v[0] == "k" else None
                if hid in _SIZE_ARGS:
                    assert hid is not None
                    mreg, sreg = _SIZE_ARGS[hid]
                    mv, sv = regs.get(mreg), regs.get(sreg)
                    if mv and mv[0] == "map":
                        out.append(CallSite(pname, func, HelperId(hid).name, mv[1],
                                            sv[1] if sv and sv[0] == "k" else None, i))
                for r in range(6):
                    regs.pop(r, None)
                continue
            if cls in (asm.BPF_ALU64, asm.BPF_ALU):
                src_val: _Val | None
                if op & asm.BPF_X:
                    src_val = regs.get(ins.src)
                else:
                    src_val = ("k", ins.imm)
                aop = ins.op
                cur = regs.get(ins.dst)
                new: _Val | None = None
                if aop == asm.BPF_MOV and ins.off == 0:
                    new = src_val
                    if new and new[0] == "k" and cls == asm.BPF_ALU:
                        new = ("k", new[1] & 0xFFFFFFFF)
                elif aop == asm.BPF_ADD and cur and src_val and src_val[0] == "k":
                    if cur[0] in ("k", "fp"):
                        new = (cur[0], cur[1] + src_val[1])
                    elif cur[0] == "mv":
                        new = ("mv", cur[1], cur[2] + src_val[1])
                if new is None or (cls == asm.BPF_ALU and new[0] != "k"):
                    regs.pop(ins.dst, None)
                else:
                    regs[ins.dst] = new
                continue
            if cls == asm.BPF_LDX:
                base = regs.get(ins.src)
                val: _Val | None = None
                if ins.mode == asm.BPF_MEM and ins.ldst_size == asm.BPF_DW and base:
                    if base[0] == "fp":
                        val = stack.get(base[1] + ins.off)
                    elif base[0] == "mv":
                        w = _data_word(spec, base[1], base[2] + ins.off)
                        val = ("k", w) if w is not None else None
                if val is None:
                    regs.pop(ins.dst, None)
                else:
                    regs[ins.dst] = val
                continue
            if cls in (asm.BPF_STX, asm.BPF_ST):
                base = regs.get(ins.dst)
                if base and base[0] == "fp":
                    slot = base[1] + ins.off
                    for k in [k for k in stack if slot - 8 < k < slot + 8]:
                        del stack[k]
                    if ins.mode == asm.BPF_MEM and ins.ldst_size == asm.BPF_DW:
                        v2 = regs.get(ins.src) if cls == asm.BPF_STX else ("k", ins.imm)
                        if v2 is not None:
                            stack[slot] = v2
                elif cls == asm.BPF_STX and ins.mode != asm.BPF_MEM:
                    regs.pop(ins.src, None)  # atomics may write back into src
                continue
            if cls in (asm.BPF_LD,):
                regs.pop(0, None)
    return out


# ----------------------------------------------------------------- type matching
def _composites(spec: Spec, size: int) -> dict[tuple[str, str], int]:
    """Named struct/union types (or typedef names of anonymous ones) of ``size`` bytes."""
    out: dict[tuple[str, str], int] = {}
    for t in spec:
        if isinstance(t, bt.Composite) and t.name and t.size == size:
            out.setdefault((t.kind_name, t.name), t.id)
        elif isinstance(t, bt.Typedef) and t.name:
            try:
                r = spec.resolve_type(t.id)
            except ParseError:
                continue
            if isinstance(r, bt.Composite) and not r.name and r.size == size:
                out.setdefault(("TYPEDEF", t.name), t.id)
    return out


def _label(kind: str, name: str) -> str:
    return name if kind == "TYPEDEF" else f"{kind.lower()} {name}"


def _written_types(dwarf: Any, functions: Iterable[str], entries: Iterable[str],
                   size: int) -> dict[tuple[str, str], int]:
    """Struct types of ``size`` the functions hold locals of, or pointers to (DWARF).

    Parameters count except those of program entry points (``entries``): their only
    parameter is the context, which the program reads, not writes as a record."""
    entry = set(entries)
    types: Spec = dwarf.to_btf()
    out: dict[tuple[str, str], int] = {}
    for fn in functions:
        for tid in dwarf.local_types(fn, params=fn not in entry):
            t = types.type(types.resolve(tid))
            if isinstance(t, bt.Pointer):
                try:
                    t = types.type(types.resolve(t.type))
                except ParseError:
                    continue
            if isinstance(t, bt.Composite) and t.name and t.size == size:
                out.setdefault((t.kind_name, t.name), t.id)
    return out


def _how_to_choose(name: str) -> str:
    return (f"choose with --record {name}=TYPE (bpfkit run) or "
            f"RingBuffer/PerfBuffer(record=...) (Python)")


def choose_records(spec: Any, maps: Iterable[str] | None = None,
                   options: dict[str, str] | None = None,
                   bare: Sequence[str] = ()) -> dict[str, RecordChoice]:
    """A :class:`RecordChoice` for each ring/perf buffer map of ``spec``.

    ``options`` maps a map name to a type name the user chose (``--record MAP=TYPE``);
    ``bare`` type names apply to every map whose record size fits them.
    """
    options = options or {}
    names = list(maps) if maps is not None else [
        n for n, m in spec.maps.items() if m.type in _OUTPUT_MAPS]
    sites = call_sites(spec)
    dwarf: Any = None
    dwarf_error = ""
    try:
        dwarf = spec.dwarf()
    except ParseError as e:
        dwarf_error = str(e)
    except BpfkitError as e:  # no object bytes kept
        dwarf_error = str(e)
    out: dict[str, RecordChoice] = {}
    for name in names:
        mine = [s for s in sites if s.map == name]
        ch = RecordChoice(name, sorted({s.size for s in mine}, key=lambda x: (x is None, x or 0)))
        out[name] = ch
        if name in options:
            _choose_named(ch, spec, dwarf, options[name], dwarf_error)
            continue
        known = [s for s in ch.sizes if s is not None]
        if not mine:
            ch.warning = (f"map {name!r}: no program in this object writes records to it, so "
                          f"their type is unknown; records are shown as hex; "
                          f"{_how_to_choose(name)}")
            continue
        if len(ch.sizes) != 1 or not known:
            what = ("sizes " + ", ".join(str(s) if s is not None else "computed at run time"
                                         for s in ch.sizes))
            ch.warning = (f"map {name!r}: records are written with {what}, so no single "
                          f"type fits; records are shown as hex; {_how_to_choose(name)}")
            continue
        size = known[0]
        for b in bare:
            trial = RecordChoice(name, ch.sizes)
            _choose_named(trial, spec, dwarf, b, dwarf_error)
            if trial.chosen and trial.size == size:
                out[name] = trial
                break
        if out[name].chosen:
            continue
        _choose_by_size(ch, spec, dwarf, size, {s.function for s in mine}, dwarf_error)
    return out


def _choose_named(ch: RecordChoice, spec: Any, dwarf: Any, tname: str, dwarf_error: str) -> None:
    for source, types in (("btf", spec.btf), ("dwarf", dwarf.to_btf() if dwarf else None)):
        if types is None:
            continue
        try:
            tid = find_type(types, tname)
        except ParseError:
            continue
        ch.spec, ch.type_id, ch.name, ch.source = types, tid, tname, source
        ch.size = types.sizeof(tid)
        return
    extra = f" ({dwarf_error})" if dwarf_error else ""
    ch.warning = (f"map {ch.map!r}: no type named {tname!r} in the object's BTF or "
                  f"DWARF{extra}; records are shown as hex")


def _choose_by_size(ch: RecordChoice, spec: Any, dwarf: Any, size: int,
                    functions: set[str], dwarf_error: str) -> None:
    pools: list[tuple[str, Spec, dict[tuple[str, str], int]]] = []
    if dwarf is not None:
        written = _written_types(dwarf, sorted(functions), spec.programs, size)
        if written:
            pools.append(("dwarf", dwarf.to_btf(), written))
    if spec.btf is not None:
        pools.append(("btf", spec.btf, _composites(spec.btf, size)))
    if dwarf is not None:
        pools.append(("dwarf", dwarf.to_btf(), _composites(dwarf.to_btf(), size)))
    for source, types, cands in pools:
        if len(cands) == 1:
            (kind, tname), tid = next(iter(cands.items()))
            # a type BTF also has is taken from BTF (the kernel-checked description)
            if source == "dwarf" and spec.btf is not None:
                for t in spec.btf.types_by_name(tname):
                    if t.kind_name == kind and spec.btf.sizeof(t.id) == size:
                        source, types, tid = "btf", spec.btf, t.id
                        break
            ch.spec, ch.type_id, ch.size, ch.source = types, tid, size, source
            ch.name = _label(kind, tname)
            return
        if len(cands) > 1:
            ch.candidates = sorted(_label(k, n) for k, n in cands)
            ch.warning = (f"map {ch.map!r}: {len(cands)} types are {size} bytes "
                          f"({', '.join(ch.candidates)}); records are shown as hex; "
                          f"{_how_to_choose(ch.map)}")
            return
    why = f" (no DWARF: {dwarf_error})" if dwarf_error else ""
    ch.warning = (f"map {ch.map!r}: records are {size} bytes and no struct or union of that "
                  f"size is in the object's BTF or DWARF{why}; records are shown as hex; "
                  f"{_how_to_choose(ch.map)}")


def parse_record_options(values: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``--record`` values: ``MAP=TYPE`` pairs and bare ``TYPE`` names (comma-separated ok)."""
    pairs: dict[str, str] = {}
    bare: list[str] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" in part:
                m, _, t = part.partition("=")
                if not m.strip() or not t.strip():
                    raise BpfkitError(f"--record {part!r}: expected MAP=TYPE or TYPE")
                pairs[m.strip()] = t.strip()
            else:
                bare.append(part)
    return pairs, bare


def safe_decoder(ch: RecordChoice, *, perf: bool = False,
                 warn: Any = None) -> Any:
    """A ``bytes -> value`` function for ``ch``'s type that never raises on a bad record.

    A record whose length does not fit the type (exactly its size on a ring buffer; up
    to :data:`PERF_PAD` bytes more on a perf buffer, whose samples are padded) comes back
    as ``bytes`` and ``warn`` (a ``str -> None`` callable) is called once for the map.
    """
    assert ch.spec is not None
    dec = decoder_for(ch.spec, ch.type_id)
    size = ch.size
    top = size + (PERF_PAD if perf else 0)
    warned = [False]

    def decode(buf: Any) -> Any:
        n = len(buf)
        if size <= n <= top:
            try:
                return dec(buf)
            except (ValueError, TypeError, BpfkitError) as e:  # struct.error is a ValueError
                why = f"cannot be decoded as {ch.name} ({e})"
        else:
            why = f"is {n} bytes where {ch.name} is {size}"
        if not warned[0] and warn is not None:
            warned[0] = True
            warn(f"map {ch.map!r}: a record {why}; such records are shown as hex")
        return bytes(buf)

    return decode
