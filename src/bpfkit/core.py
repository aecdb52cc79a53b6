"""CO-RE ("compile once, run everywhere") relocation.

A BPF object built with ``-g`` and ``preserve_access_index`` carries, in ``.BTF.ext``,
one record per instruction whose constant depends on a kernel type layout: a field
offset, a field size, whether a field/type/enumerator exists, a type id, an enum
value...  The object's own BTF says what the program *expected*; the target BTF
(normally the running kernel's) says what is *true*.  :func:`relocate` rewrites each
such instruction so the program reads the right bytes on this kernel.

The rules are libbpf's (``relo_core.c``), so objects behave the same under bpfkit and
libbpf: candidates are target types with the same *essential* name (``foo___v2`` ->
``foo``) and a compatible kind; a field is found by name, also through anonymous
structs/unions; several candidates are fine only if they agree; and a relocation
that cannot be resolved *poisons* its instruction (a call to helper ``0xbad2310``)
instead of failing the load, because the program may guard that path with
``bpf_core_field_exists()`` and the verifier will discard it as dead code.  Only
when the poisoned instruction is reachable does the load fail, and
:func:`explain_poison` turns the verifier's "invalid func unknown#195896080" into a
sentence naming the type, the field and the reason.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import asm, verifier_log
from .btf.ext import CoreRelo, CoreReloKind
from .btf.parse import Spec
from .btf.types import (
    BTF_INT_SIGNED,
    Array,
    BTFType,
    Composite,
    EnumBase,
    Float,
    FuncProto,
    Fwd,
    Int,
    Pointer,
    Union,
    Void,
)
from .errors import BTFError, CoreRelocationError

__all__ = [
    "POISONED_CALL_ID", "CoreResult", "essential_name", "explain_poison", "poison_slot_from_log",
    "poisoned_call_id", "relocate", "types_are_compat", "types_match",
]

#: Helper id a poisoned instruction calls ("bad relo"); the verifier prints it as
#: ``invalid func unknown#195896080`` when the instruction is reachable.
POISONED_CALL_ID = 0xBAD2310
poisoned_call_id = POISONED_CALL_ID

_MAX_SPEC_LEN = 64     # libbpf's BPF_CORE_SPEC_MAX_LEN
_MAX_DEPTH = 32        # type-chain depth limit of the compat/match walks
_M32 = 0xFFFF_FFFF
_SLOT_BYTES = 8        # one BPF instruction slot
_M64 = 0xFFFF_FFFF_FFFF_FFFF

_FIELD_KINDS = frozenset({
    CoreReloKind.FIELD_BYTE_OFFSET, CoreReloKind.FIELD_BYTE_SIZE, CoreReloKind.FIELD_EXISTS,
    CoreReloKind.FIELD_SIGNED, CoreReloKind.FIELD_LSHIFT_U64, CoreReloKind.FIELD_RSHIFT_U64})
_TYPE_KINDS = frozenset({
    CoreReloKind.TYPE_ID_LOCAL, CoreReloKind.TYPE_ID_TARGET, CoreReloKind.TYPE_EXISTS,
    CoreReloKind.TYPE_SIZE, CoreReloKind.TYPE_MATCHES})
_ENUMVAL_KINDS = frozenset({CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE})

_LDST_BYTES = {asm.BPF_B: 1, asm.BPF_H: 2, asm.BPF_W: 4, asm.BPF_DW: 8}
_BYTES_LDST = {v: k for k, v in _LDST_BYTES.items()}


# --------------------------------------------------------------------------- public results
@dataclass(slots=True)
class CoreResult:
    """What one CO-RE record did to one instruction.

    ``insn_index`` indexes the (patched) instruction list; ``slot`` is the 8-byte slot
    of that instruction relative to the start of the list, which is what the verifier
    log counts.  ``old_value``/``new_value`` are the instruction's immediate or offset
    before and after (``new_value`` is None when the instruction was poisoned).
    """

    insn_index: int
    kind: CoreReloKind | int
    type_name: str
    field_path: str
    old_value: int | None
    new_value: int | None
    poisoned: bool = False
    reason: str = ""
    slot: int = 0
    program: str = ""
    access_str: str = ""
    target_type_id: int | None = None
    slots: int = 1

    @property
    def kind_name(self) -> str:
        return _kind_name(self.kind)

    def __str__(self) -> str:
        what = f"{self.kind_name} {self.field_path}"
        if self.poisoned:
            return f"insn {self.insn_index}: {what}: poisoned ({self.reason})"
        return f"insn {self.insn_index}: {what}: {self.old_value} -> {self.new_value}"


def explain_poison(insn_index: int, results: Iterable[CoreResult]) -> str:
    """Explain a verifier error at a poisoned call, or return "" if none is at that slot.

    ``insn_index`` is the instruction number the verifier reports (an 8-byte slot),
    relative to the instructions given to :func:`relocate`; a loader that appends
    subprograms or prepends code must subtract where those instructions start.
    """
    for r in results:
        if r.poisoned and r.slot <= insn_index < r.slot + r.slots:
            where = f" in {r.program}" if r.program else ""
            return f"CO-RE relocation failed for {r.field_path}{where}: {r.reason}"
    return ""




def poison_slot_from_log(log: str) -> int | None:
    """The slot of the poisoned call a verifier log complains about, if it does."""
    return verifier_log.poisoned_call_slot(log, POISONED_CALL_ID)


# --------------------------------------------------------------------------- names
def essential_name(name: str) -> str:
    """``name`` without its last ``___flavour`` suffix (libbpf's essential name).

    A flavour separator is three underscores with a non-underscore on each side, so
    ``foo___bar`` -> ``foo`` while ``foo____bar`` and ``___foo`` keep their names.
    """
    if "___" not in name:
        return name
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


def _kind_name(kind: CoreReloKind | int) -> str:
    try:
        return CoreReloKind(kind).name.lower()
    except ValueError:
        return f"kind {int(kind)}"


# --------------------------------------------------------------------------- internals
class _Fail(Exception):
    """A relocation that cannot be applied at all (becomes CoreRelocationError)."""


@dataclass(slots=True)
class _Acc:
    """One high-level accessor: a named member of ``type_id`` or an array index."""

    type_id: int
    idx: int
    name: str | None


@dataclass(slots=True)
class _CSpec:
    """A parsed access path in one BTF: accessors, raw indices and the bit offset."""

    btf: Spec
    root_id: int
    accs: list[_Acc] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    bit_offset: int = 0


@dataclass(slots=True)
class _Res:
    orig: int = 0
    new: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    reason: str = ""
    target_id: int | None = None


@dataclass(slots=True)
class _FieldVal:
    val: int
    size: int = 0
    type_id: int = 0
    validate: bool = True


class _NeedPoison(Exception):
    pass


def _type(btf: Spec, tid: int) -> BTFType:
    try:
        return btf.type(tid)
    except BTFError as e:
        raise _Fail(str(e)) from None


def _skip(btf: Spec, tid: int) -> tuple[int, BTFType]:
    """Skip typedefs and qualifiers (libbpf's skip_mods_and_typedefs)."""
    try:
        rid = btf.resolve(tid)
        return rid, btf.type(rid)
    except BTFError as e:
        raise _Fail(str(e)) from None


def _sizeof(btf: Spec, tid: int) -> int:
    try:
        return btf.sizeof(tid)
    except BTFError as e:
        raise _Fail(str(e)) from None


def _kind_compat(a: BTFType, b: BTFType) -> bool:
    """Same BTF kind, except that ENUM and ENUM64 stand in for each other."""
    return a.kind == b.kind or (isinstance(a, EnumBase) and isinstance(b, EnumBase))


def _describe(t: BTFType) -> str:
    kind = "union" if isinstance(t, Union) else t.kind_name.lower()
    return f"{kind} {t.name}" if t.name else f"anonymous {kind}"


# ----------------------------------------------------------------- compatibility rules
def types_are_compat(local: Spec, local_id: int, target: Spec, target_id: int) -> bool:
    """libbpf's ``bpf_core_types_are_compat``: the loose test of type-based relocations.

    Names are assumed to match already; structs/unions/enums/fwds are compatible by
    kind alone, ints unless they are old-style bitfield ints, pointers and arrays by
    their targets, function prototypes by arity and parameter/return types.
    """
    return _types_compat(local, local_id, target, target_id, 64)


def _types_compat(local: Spec, lid: int, target: Spec, tid: int, level: int) -> bool:
    if not _kind_compat(_type(local, lid), _type(target, tid)):
        return False
    for _ in range(_MAX_DEPTH):
        lid, lt = _skip(local, lid)
        tid, tt = _skip(target, tid)
        if not _kind_compat(lt, tt):
            return False
        if isinstance(lt, (Void, Composite, EnumBase, Fwd)):
            return True
        if isinstance(lt, Int):
            assert isinstance(tt, Int)
            return lt.offset == 0 and tt.offset == 0
        if isinstance(lt, Pointer):
            assert isinstance(tt, Pointer)
            lid, tid = lt.type, tt.type
        elif isinstance(lt, Array):
            assert isinstance(tt, Array)
            lid, tid = lt.type, tt.type
        elif isinstance(lt, FuncProto):
            assert isinstance(tt, FuncProto)
            if len(lt.params) != len(tt.params):
                return False
            if level <= 0:
                raise _Fail("function prototype nesting too deep")
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not _types_compat(local, _skip(local, lp.type)[0], target,
                                     _skip(target, tp.type)[0], level - 1):
                    return False
            lid, tid = lt.return_type, tt.return_type
        else:
            return False
    raise _Fail("type chain too deep (more than 32 pointers/arrays)")


def _names_match(lname: str, tname: str) -> bool:
    if not tname:
        return not lname
    return essential_name(lname) == essential_name(tname)


def types_match(local: Spec, local_id: int, target: Spec, target_id: int) -> bool:
    """libbpf's ``bpf_core_types_match``: the strict test behind ``bpf_core_type_matches``.

    Same kinds (a struct/union behind a pointer may match a forward declaration, enum
    may match enum64), ints of equal size and signedness, arrays of equal length,
    every local member/enumerator present by name in the target (members matched
    recursively, only by name and kind once behind a pointer), prototypes by arity.
    """
    return _types_match(local, local_id, target, target_id, False, 64)


def _types_match(local: Spec, lid: int, target: Spec, tid: int, behind_ptr: bool,
                 level: int) -> bool:
    if level <= 0:
        raise _Fail("type nesting too deep for bpf_core_type_matches")
    for _ in range(_MAX_DEPTH):
        lid, lt = _skip(local, lid)
        tid, tt = _skip(target, tid)
        if not _names_match(lt.name, tt.name):
            return False
        if isinstance(lt, Void):
            return isinstance(tt, Void)
        if isinstance(lt, Fwd):
            if behind_ptr:
                if isinstance(tt, Fwd):
                    return lt.is_union == tt.is_union
                return isinstance(tt, Composite) and isinstance(tt, Union) == lt.is_union
            return isinstance(tt, Fwd) and lt.is_union == tt.is_union
        if isinstance(lt, EnumBase):
            if not isinstance(tt, EnumBase) or lt.size != tt.size:
                return False
            if len(lt.values) > len(tt.values):
                return False
            return all(any(_names_match(lv.name, tv.name) for tv in tt.values)
                       for lv in lt.values)
        if isinstance(lt, Composite):
            if behind_ptr:
                if lt.kind == tt.kind:
                    return True
                return isinstance(tt, Fwd) and tt.is_union == isinstance(lt, Union)
            if lt.kind != tt.kind:
                return False
            assert isinstance(tt, Composite)
            if len(lt.members) > len(tt.members):
                return False
            for lm in lt.members:
                if not any(_names_match(lm.name, tm.name)
                           and _types_match(local, lm.type, target, tm.type, behind_ptr,
                                            level - 1)
                           for tm in tt.members):
                    return False
            return True
        if isinstance(lt, Int):
            return (isinstance(tt, Int) and lt.size == tt.size
                    and (lt.encoding & BTF_INT_SIGNED) == (tt.encoding & BTF_INT_SIGNED))
        if isinstance(lt, Pointer):
            if not isinstance(tt, Pointer):
                return False
            behind_ptr = True
            lid, tid = lt.type, tt.type
        elif isinstance(lt, Array):
            if not isinstance(tt, Array) or lt.nelems != tt.nelems:
                return False
            lid, tid = lt.type, tt.type
        elif isinstance(lt, FuncProto):
            if not isinstance(tt, FuncProto) or len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not _types_match(local, lp.type, target, tp.type, behind_ptr, level - 1):
                    return False
            lid, tid = lt.return_type, tt.return_type
        else:
            return False
    raise _Fail("type chain too deep (more than 32 pointers/arrays)")


def _fields_compat(local: Spec, lid: int, target: Spec, tid: int) -> bool:
    """Can a local field of type ``lid`` be relocated to a target field of type ``tid``?"""
    for _ in range(_MAX_DEPTH):
        lid, lt = _skip(local, lid)
        tid, tt = _skip(target, tid)
        if isinstance(lt, Composite) and isinstance(tt, Composite):
            return True
        if not _kind_compat(lt, tt):
            return False
        if isinstance(lt, (Pointer, Float)):
            return True
        if isinstance(lt, (Fwd, EnumBase)):
            ln, tn = essential_name(lt.name), essential_name(tt.name)
            return not ln or not tn or ln == tn
        if isinstance(lt, Int):
            assert isinstance(tt, Int)
            return lt.offset == 0 and tt.offset == 0
        if isinstance(lt, Array):
            assert isinstance(tt, Array)
            lid, tid = lt.type, tt.type
            continue
        return False
    raise _Fail("array nesting too deep")


# ----------------------------------------------------------------- access specs
_ACCESS_RE = re.compile(r"\d+(?::\d+)*")


def _is_flex(btf: Spec, prev: _Acc | None, arr: Array) -> bool:
    """A zero-length array that is the last member of its struct may be indexed freely."""
    if prev is None or prev.name is None or arr.nelems > 0:
        return False
    t = _type(btf, prev.type_id)
    return isinstance(t, Composite) and prev.idx == len(t.members) - 1


def _parse_local(local: Spec, relo: CoreRelo, kind: CoreReloKind) -> _CSpec:
    """Turn the access string into accessors on the local type (bpf_core_parse_spec)."""
    text = relo.access_str
    spec = _CSpec(local, relo.type_id)
    if kind in _TYPE_KINDS:
        if text != "0":
            raise _Fail(f"type-based relocation has access string {text!r} (expected '0')")
        return spec
    if not _ACCESS_RE.fullmatch(text or ""):
        raise _Fail(f"malformed access string {text!r}")
    raw = [int(x) for x in text.split(":")]
    if len(raw) > _MAX_SPEC_LEN:
        raise _Fail(f"access string {text!r} is longer than {_MAX_SPEC_LEN} steps")
    spec.raw = list(raw)
    rid, t = _skip(local, relo.type_id)
    acc = _Acc(rid, raw[0], None)
    spec.accs.append(acc)
    if kind in _ENUMVAL_KINDS:
        if not isinstance(t, EnumBase):
            raise _Fail(f"enum value relocation on {_describe(t)}, not an enum")
        if len(raw) > 1 or raw[0] >= len(t.values):
            raise _Fail(f"enum value index {text!r} out of range for {_describe(t)} "
                        f"({len(t.values)} values)")
        acc.name = t.values[raw[0]].name
        return spec
    spec.bit_offset = raw[0] * _sizeof(local, rid) * 8
    tid = rid
    for step, idx in enumerate(raw[1:], 1):
        tid, t = _skip(local, tid)
        if isinstance(t, Composite):
            if idx >= len(t.members):
                raise _Fail(f"access string {text!r} step {step}: member index {idx} out of "
                            f"range for {_describe(t)} ({len(t.members)} members)")
            m = t.members[idx]
            spec.bit_offset += m.bit_offset
            if m.name:
                spec.accs.append(_Acc(tid, idx, m.name))
            tid = m.type
        elif isinstance(t, Array):
            eid, _ = _skip(local, t.type)
            if not _is_flex(local, spec.accs[-1], t) and idx >= t.nelems:
                raise _Fail(f"access string {text!r} step {step}: index {idx} out of bounds "
                            f"of array[{t.nelems}]")
            spec.accs.append(_Acc(eid, idx, None))
            spec.bit_offset += idx * _sizeof(local, eid) * 8
            tid = eid
        else:
            raise _Fail(f"access string {text!r} step {step} goes into {_describe(t)}, which "
                        "is neither a struct, a union nor an array")
    return spec


def _path(local: Spec, relo: CoreRelo, kind: int, spec: _CSpec | None) -> str:
    """A C-like name for what the relocation is about: ``task_struct.pid``, ``e::V``."""
    root = _type(local, relo.type_id)
    name = root.name or f"<anon {root.kind_name.lower()} [{relo.type_id}]>"
    if spec is None or kind in _TYPE_KINDS or not spec.accs:
        return name
    if kind in _ENUMVAL_KINDS:
        return f"{name}::{spec.accs[0].name}"
    out = name
    for i, acc in enumerate(spec.accs):
        if acc.name is not None:
            out += "." + acc.name
        elif i > 0 or acc.idx > 0:
            out += f"[{acc.idx}]"
    return out


def _match_member(local: Spec, lacc: _Acc, target: Spec, targ_id: int,
                  tspec: _CSpec) -> int | None:
    """Find local member ``lacc`` in target type ``targ_id`` (searching anonymous members).

    Returns the target member's type id, or None; ``tspec`` is extended on success and
    left as it was on failure.
    """
    targ_id, tt = _skip(target, targ_id)
    if not isinstance(tt, Composite):
        return None
    lt = _type(local, lacc.type_id)
    assert isinstance(lt, Composite)
    lname = lt.members[lacc.idx].name
    ltype = lt.members[lacc.idx].type
    for i, m in enumerate(tt.members):
        if len(tspec.raw) >= _MAX_SPEC_LEN:
            raise _Fail(f"target type nesting deeper than {_MAX_SPEC_LEN} looking for {lname!r}")
        tspec.bit_offset += m.bit_offset
        tspec.raw.append(i)
        if not m.name:
            found = _match_member(local, lacc, target, m.type, tspec)
            if found is not None:
                return found
        elif m.name == lname:
            if _fields_compat(local, ltype, target, m.type):
                tspec.accs.append(_Acc(targ_id, i, m.name))
                return m.type
            tspec.bit_offset -= m.bit_offset
            tspec.raw.pop()
            return None
        tspec.bit_offset -= m.bit_offset
        tspec.raw.pop()
    return None


def _spec_match(lspec: _CSpec, kind: CoreReloKind, target: Spec, cand: int) -> _CSpec | None:
    """Match the local access path against candidate ``cand`` (bpf_core_spec_match)."""
    tspec = _CSpec(target, cand)
    local = lspec.btf
    if kind in _TYPE_KINDS:
        if kind == CoreReloKind.TYPE_MATCHES:
            ok = _types_match(local, lspec.root_id, target, cand, False, 64)
        else:
            ok = _types_compat(local, lspec.root_id, target, cand, 64)
        return tspec if ok else None
    if kind in _ENUMVAL_KINDS:
        tid, tt = _skip(target, cand)
        if not isinstance(tt, EnumBase):
            return None
        want = essential_name(lspec.accs[0].name or "")
        for i, v in enumerate(tt.values):
            if essential_name(v.name) == want:
                tspec.accs.append(_Acc(tid, i, v.name))
                tspec.raw.append(i)
                return tspec
        return None
    targ_id = cand
    for i, lacc in enumerate(lspec.accs):
        targ_id, tt = _skip(target, targ_id)
        if lacc.name is not None:
            nxt = _match_member(local, lacc, target, targ_id, tspec)
            if nxt is None:
                return None
            targ_id = nxt
            continue
        if i > 0:
            if not isinstance(tt, Array):
                return None
            if not _is_flex(target, tspec.accs[-1], tt) and lacc.idx >= tt.nelems:
                return None
            targ_id, _ = _skip(target, tt.type)
        if len(tspec.raw) >= _MAX_SPEC_LEN:
            raise _Fail(f"target access path deeper than {_MAX_SPEC_LEN}")
        tspec.accs.append(_Acc(targ_id, lacc.idx, None))
        tspec.raw.append(lacc.idx)
        tspec.bit_offset += lacc.idx * _sizeof(target, targ_id) * 8
    return tspec


# ----------------------------------------------------------------- values
def _calc_field(kind: CoreReloKind, spec: _CSpec | None) -> _FieldVal:
    if kind == CoreReloKind.FIELD_EXISTS:
        return _FieldVal(1 if spec is not None else 0)
    if spec is None:
        raise _NeedPoison
    btf = spec.btf
    acc = spec.accs[-1]
    if acc.name is None:  # the path ends in an array element (or the root itself)
        sz = _sizeof(btf, acc.type_id)
        if kind == CoreReloKind.FIELD_BYTE_OFFSET:
            return _FieldVal(spec.bit_offset // 8, sz, acc.type_id)
        if kind == CoreReloKind.FIELD_BYTE_SIZE:
            return _FieldVal(sz)
        raise _Fail(f"{_kind_name(kind)} cannot be applied to an array element access")
    t = _type(btf, acc.type_id)
    assert isinstance(t, Composite)
    m = t.members[acc.idx]
    ftid, mt = _skip(btf, m.type)
    bit_off = spec.bit_offset
    bit_sz = m.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = getattr(mt, "size", 0)
        if not isinstance(byte_sz, int) or byte_sz <= 0:
            raise _Fail(f"bitfield {m.name!r} has type {_describe(mt)} without a size")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise _Fail(f"bitfield {m.name!r} cannot be read with one 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = _sizeof(btf, ftid)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    # For bitfields the compiler may have chosen another load size or offset than the
    # one computed here, so only the unambiguous values are checked against it.
    validate = not bitfield
    if kind == CoreReloKind.FIELD_BYTE_OFFSET:
        if bitfield:
            return _FieldVal(byte_off, validate=False)
        return _FieldVal(byte_off, byte_sz, ftid, validate)
    if kind == CoreReloKind.FIELD_BYTE_SIZE:
        return _FieldVal(byte_sz, validate=validate)
    if kind == CoreReloKind.FIELD_SIGNED:
        signed = (isinstance(mt, EnumBase) and mt.signed) or \
                 (isinstance(mt, Int) and bool(mt.encoding & BTF_INT_SIGNED))
        return _FieldVal(int(signed))
    if kind == CoreReloKind.FIELD_LSHIFT_U64:
        if btf.byteorder == "little":
            return _FieldVal(64 - (bit_off + bit_sz - byte_off * 8), validate=validate)
        return _FieldVal((8 - byte_sz) * 8 + (bit_off - byte_off * 8), validate=validate)
    if kind == CoreReloKind.FIELD_RSHIFT_U64:
        return _FieldVal(64 - bit_sz)
    raise _Fail(f"unsupported field relocation {_kind_name(kind)}")


def _calc_type(kind: CoreReloKind, spec: _CSpec | None) -> tuple[int, bool]:
    """(value, validate) of a type-based relocation; a missing type gives 0."""
    if spec is None:
        return 0, True
    if kind == CoreReloKind.TYPE_ID_TARGET:
        return spec.root_id, False  # ids shift when BTF is rewritten: not worth checking
    if kind in (CoreReloKind.TYPE_EXISTS, CoreReloKind.TYPE_MATCHES):
        return 1, True
    if kind == CoreReloKind.TYPE_SIZE:
        return _sizeof(spec.btf, spec.root_id), True
    raise _Fail(f"unsupported type relocation {_kind_name(kind)}")


def _calc_enumval(kind: CoreReloKind, spec: _CSpec | None) -> int:
    if kind == CoreReloKind.ENUMVAL_EXISTS:
        return 1 if spec is not None else 0
    if spec is None:
        raise _NeedPoison
    acc = spec.accs[0]
    t = _type(spec.btf, acc.type_id)
    assert isinstance(t, EnumBase)
    return t.values[acc.idx].value


def _calc(kind: CoreReloKind, lspec: _CSpec, tspec: _CSpec | None) -> _Res:
    """Original (local) and new (target) values of one relocation (bpf_core_calc_relo)."""
    res = _Res(target_id=tspec.root_id if tspec is not None else None)
    try:
        if kind in _FIELD_KINDS:
            lv = _calc_field(kind, lspec)
            tv = _calc_field(kind, tspec)
            res.orig, res.validate, res.orig_sz = lv.val, lv.validate, lv.size
            res.new, res.new_sz = tv.val, tv.size
            if res.orig_sz != res.new_sz:
                lt = _type(lspec.btf, lv.type_id)
                tt = _type(tspec.btf, tv.type_id) if tspec is not None else lt
                # Resizing a load is only safe where zero-extension keeps the value:
                # pointers and unsigned integers.  Anything else poisons a load/store.
                ok = (isinstance(lt, Pointer) and isinstance(tt, Pointer)) or (
                    isinstance(lt, Int) and isinstance(tt, Int)
                    and lt.encoding != BTF_INT_SIGNED and tt.encoding != BTF_INT_SIGNED)
                if not ok:
                    res.fail_memsz = True
                    res.reason = (f"field size changed from {res.orig_sz} to {res.new_sz} bytes "
                                  "and it is not a pointer or unsigned integer, so the "
                                  "load/store cannot be resized")
        elif kind in _TYPE_KINDS:
            res.orig, res.validate = _calc_type(kind, lspec)
            res.new, _ = _calc_type(kind, tspec)
        elif kind in _ENUMVAL_KINDS:
            res.orig = _calc_enumval(kind, lspec)
            res.new = _calc_enumval(kind, tspec)
        else:
            raise _Fail(f"unknown CO-RE relocation kind {int(kind)}")
    except _NeedPoison:
        res.poison = True
    return res


# ----------------------------------------------------------------- candidates
_FLAVOURS: dict[int, tuple[weakref.ref[Spec], int, dict[str, list[str]]]] = {}
_SMALL_SPEC = 20000


def _flavoured_names(target: Spec) -> dict[str, list[str]]:
    """essential name -> full names that carry a ``___flavour`` suffix in ``target``.

    Kernel BTF has a handful, found by scanning its string sections for ``___``;
    small (e.g. hand-built) specs are simply walked.  Cached per Spec object.
    """
    key = id(target)
    hit = _FLAVOURS.get(key)
    if hit is not None and hit[0]() is target and hit[1] == len(target):
        return hit[2]
    names: set[str] = set()
    specs: list[Spec] = []
    s: Spec | None = target
    while s is not None:
        specs.append(s)
        s = s.base
    for sp in specs:
        ids = sp.own_ids()
        if len(ids) <= _SMALL_SPEC:
            for tid in ids:
                n = sp.name_of(tid)
                if "___" in n:
                    names.add(n)
            continue
        strs = sp.strings
        p = strs.find(b"___")
        while p >= 0:
            start = strs.rfind(b"\0", 0, p) + 1
            end = strs.find(b"\0", p)
            if end < 0:
                break
            names.add(strs[start:end].decode("utf-8", "surrogateescape"))
            p = strs.find(b"___", end)
    out: dict[str, list[str]] = {}
    for n in sorted(names):
        ess = essential_name(n)
        if ess != n:
            out.setdefault(ess, []).append(n)
    def _forget(_ref: weakref.ref[Spec], k: int = key) -> None:
        _FLAVOURS.pop(k, None)

    try:
        ref = weakref.ref(target, _forget)
    except TypeError:
        return out
    _FLAVOURS[key] = (ref, len(target), out)
    return out


def _find_candidates(local: Spec, local_id: int, target: Spec) -> list[int]:
    """Target ids with the local type's essential name and a compatible kind."""
    lt = _type(local, local_id)
    ess = essential_name(lt.name)
    names = [ess, *_flavoured_names(target).get(ess, ())]
    out: set[int] = set()
    for n in names:
        for tid in target.ids_by_name(n):
            if _kind_compat(lt, _type(target, tid)):
                out.add(tid)
    return sorted(out)


# ----------------------------------------------------------------- patching
def _s32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v & 0x8000_0000 else v


def _poison(insn: asm.Instruction) -> None:
    insn.opcode = asm.CALL
    insn.dst = insn.src = insn.off = 0
    insn.imm = POISONED_CALL_ID
    insn.ref = insn.ref_kind = None


def _patch(insn: asm.Instruction, res: _Res) -> tuple[int, int | None, str]:
    """Apply ``res`` to ``insn``: (old value, new value or None if poisoned, reason)."""
    cls = insn.cls
    if cls in (asm.BPF_ALU, asm.BPF_ALU64):
        if insn.opcode & asm.BPF_X:
            raise _Fail(f"instruction {insn} has a register source; a CO-RE relocation needs "
                        "an immediate operand")
        old = insn.imm
        if res.poison:
            return old, None, res.reason
        if res.validate and (old & _M32) != (res.orig & _M32):
            raise _Fail(f"instruction holds {old} but the object's BTF says {res.orig}: the "
                        ".BTF.ext record does not belong to this instruction")
        if not -(1 << 31) <= res.new < (1 << 32):
            raise _Fail(f"new value {res.new} does not fit a 32-bit immediate")
        insn.imm = _s32(res.new)
        return old, res.new, ""
    if cls in (asm.BPF_LDX, asm.BPF_ST, asm.BPF_STX):
        old = insn.off
        if res.poison:
            return old, None, res.reason
        if res.validate and old != res.orig:
            raise _Fail(f"instruction offset is {old} but the object's BTF says {res.orig}: "
                        "the .BTF.ext record does not belong to this instruction")
        if res.new > 0x7FFF:
            raise _Fail(f"new offset {res.new} does not fit the 16-bit offset of {insn}")
        if res.fail_memsz:
            return old, None, res.reason
        if res.new_sz != res.orig_sz:
            have = _LDST_BYTES.get(insn.ldst_size)
            if have != res.orig_sz:
                raise _Fail(f"instruction accesses {have} bytes but the field is "
                            f"{res.orig_sz} bytes in the object's BTF")
            code = _BYTES_LDST.get(res.new_sz)
            if code is None:
                raise _Fail(f"field is {res.new_sz} bytes in the target: no load of that size")
            insn.opcode = (insn.opcode & ~0x18) | code
        insn.off = res.new
        return old, res.new, ""
    if insn.is_ld_imm64:
        old = insn.imm & _M64
        if insn.src != 0 or insn.off != 0:
            raise _Fail(f"ld_imm64 {insn} has an unexpected form (src/off set)")
        if res.poison:
            return old, None, res.reason
        if res.validate and old != (res.orig & _M64):
            raise _Fail(f"instruction holds {old} but the object's BTF says {res.orig}: the "
                        ".BTF.ext record does not belong to this instruction")
        insn.imm = res.new & _M64
        return old, res.new, ""
    raise _Fail(f"cannot relocate instruction {insn} (opcode {insn.opcode:#04x}): only "
                "ALU immediates, loads/stores and ld_imm64 carry CO-RE relocations")


# ----------------------------------------------------------------- driver
def relocate(insns: list[asm.Instruction], relos: Sequence[CoreRelo], local: Spec,
             target: Spec, prog_name: str,
             cand_cache: dict[int, list[int]] | None = None) -> list[CoreResult]:
    """Apply CO-RE records ``relos`` to the program ``insns`` in place.

    ``relos[i].insn_off`` is a byte offset from the start of ``insns``.  ``local`` is the
    object's BTF, ``target`` the BTF to relocate against (``Spec.kernel()`` or a file).
    ``cand_cache`` (local type id -> target candidate ids) may be shared by the
    programs of one object so kernel look-ups happen once per type.

    A poisoned ``ld_imm64`` becomes two ``call 0xbad2310`` instructions (as in libbpf),
    so the list grows by one element while slot numbers stay the same.  Each patched
    instruction gets ``meta["core"]`` set to its :class:`CoreResult`.  Raises
    :class:`~bpfkit.errors.CoreRelocationError` for records that cannot be applied
    (malformed, ambiguous, or not matching their instruction).
    """
    cache: dict[int, list[int]] = cand_cache if cand_cache is not None else {}
    starts = asm.slot_offsets(insns)
    slot_to_idx = {s: i for i, s in enumerate(starts)}
    total_slots = (starts[-1] + insns[-1].size) if insns else 0
    pending: list[tuple[int, CoreResult]] = []

    for n, relo in enumerate(relos):
        raw_kind = relo.kind
        try:
            kind = CoreReloKind(raw_kind)
        except ValueError:
            kind = None
        idx = -1
        path = f"type id {relo.type_id}"
        type_name = path
        try:
            if relo.insn_off % _SLOT_BYTES or relo.insn_off < 0:
                raise _Fail(f"instruction offset {relo.insn_off} is not a multiple of 8")
            slot = relo.insn_off // _SLOT_BYTES
            if slot not in slot_to_idx:
                where = "past the end" if slot >= total_slots else "inside an ld_imm64"
                raise _Fail(f"instruction offset {relo.insn_off} (slot {slot}) is {where} of "
                            f"the program ({total_slots} slots)")
            idx = slot_to_idx[slot]
            root = _type(local, relo.type_id)
            type_name = root.name or f"<anon {root.kind_name.lower()}>"
            path = type_name
            if kind is None:
                raise _Fail(f"unknown CO-RE relocation kind {int(raw_kind)}")
            lspec = _parse_local(local, relo, kind)
            path = _path(local, relo, kind, lspec)
            res = _resolve(relo, kind, lspec, local, target, cache, path)
            insn = insns[idx]
            two = insn.is_ld_imm64
            old, new, reason = _patch(insn, res)
        except _Fail as e:
            where = f"instruction {idx}" if idx >= 0 else f"record #{n}"
            raise CoreRelocationError(
                f"program {prog_name!r}: CO-RE relocation #{n} ({_kind_name(raw_kind)}) at "
                f"{where} for {path}: {e}") from None
        poisoned = new is None
        if poisoned:
            _poison(insn)
        result = CoreResult(idx, kind, type_name, path, old, new, poisoned, reason,
                            slot=starts[idx], program=prog_name, access_str=relo.access_str,
                            target_type_id=res.target_id, slots=2 if two else 1)
        insn.meta["core"] = result
        pending.append((idx, result))

    # Poisoned ld_imm64s need a second call in their second slot: insert from the back
    # so earlier indices stay valid, then shift the recorded indices.
    grow = sorted(r.insn_index for _, r in pending if r.poisoned and r.slots == 2)
    for i in reversed(grow):
        extra = asm.Instruction(asm.CALL, 0, 0, 0, POISONED_CALL_ID,
                                source=insns[i].source)
        extra.meta["core"] = insns[i].meta["core"]
        insns.insert(i + 1, extra)
    results = []
    for idx, r in pending:
        r.insn_index = idx + sum(1 for g in grow if g < idx)
        results.append(r)
    return results


def _resolve(relo: CoreRelo, kind: CoreReloKind, lspec: _CSpec, local: Spec, target: Spec,
             cache: dict[int, list[int]], path: str) -> _Res:
    """Pick the target candidates, check they agree, and compute the values."""
    if kind == CoreReloKind.TYPE_ID_LOCAL:
        return _Res(relo.type_id, relo.type_id, validate=False)
    root = _type(local, relo.type_id)
    if not root.name:
        raise _Fail("CO-RE relocations against anonymous types are not supported")
    cands = cache.get(relo.type_id)
    if cands is None:
        cands = _find_candidates(local, relo.type_id, target)
        cache[relo.type_id] = cands
    chosen: _Res | None = None
    chosen_spec: _CSpec | None = None
    matched: list[int] = []
    for cid in cands:
        tspec = _spec_match(lspec, kind, target, cid)
        if tspec is None:
            continue
        res = _calc(kind, lspec, tspec)
        if chosen is None or chosen_spec is None:
            chosen, chosen_spec = res, tspec
        elif tspec.bit_offset != chosen_spec.bit_offset:
            raise _Fail(f"ambiguous: target candidates [{chosen_spec.root_id}] and [{cid}] "
                        f"put it at different offsets ({chosen_spec.bit_offset // 8} vs "
                        f"{tspec.bit_offset // 8} bytes)")
        elif res.poison != chosen.poison or res.new != chosen.new:
            a = "failure" if chosen.poison else str(chosen.new)
            b = "failure" if res.poison else str(res.new)
            raise _Fail(f"ambiguous: target candidates [{chosen_spec.root_id}] and [{cid}] "
                        f"give different results ({a} vs {b})")
        matched.append(cid)
    if chosen is not None:
        cache[relo.type_id] = matched  # later records on this type skip the misfits
        return chosen
    res = _calc(kind, lspec, None)
    if res.poison:
        ess = essential_name(root.name)
        if not cands:
            res.reason = f"the target BTF has no {root.kind_name.lower()} named {ess!r}"
        else:
            ids = ", ".join(str(c) for c in cands[:4]) + (", ..." if len(cands) > 4 else "")
            kind_word = "union" if isinstance(root, Union) else root.kind_name.lower()
            if kind in _ENUMVAL_KINDS:
                what = f"enumerator {lspec.accs[0].name}"
            else:
                what = f"field {path[len(root.name):].lstrip('.')} of a compatible type"
            res.reason = f"the target's {kind_word} {ess} (id {ids}) has no {what}"
    return res
