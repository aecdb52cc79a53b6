"""The spec dataclasses: maps, programs, global variables, externs and struct_ops values
as an object file describes them, editable before load (no kernel, no I/O)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from typing import Any

from .. import asm
from ..btf import CoreRelo, FuncInfo, LineInfo, Spec
from ..btf import types as bt
from ..errors import BpfkitError, SpecError, UsageError
from ..sections import SectionInfo

PIN_NONE = 0


PIN_BY_NAME = 1  # LIBBPF_PIN_BY_NAME


KCONFIG_MAP = ".kconfig"


EM_BPF = 247


def is_data_section(name: str) -> bool:
    """Sections libbpf turns into global-data array maps."""
    return (name in (".data", ".rodata", ".bss") or name.startswith(".data.")
            or name.startswith(".rodata.") or name.startswith(".bss."))


def is_struct_ops_section(name: str) -> bool:
    """``.struct_ops`` / ``.struct_ops.link`` (and libbpf's ``.struct_ops.<suffix>``)."""
    return name == ".struct_ops" or name.startswith(".struct_ops.")


def _is_struct_ops_link(name: str) -> bool:
    return name == ".struct_ops.link" or name.startswith(".struct_ops.link.")


def _is_rodata(name: str) -> bool:
    return name == ".rodata" or name.startswith(".rodata.")


def _strip(btf: Spec, tid: int) -> int:
    """Skip typedefs and qualifiers (const volatile are the norm for rodata constants)."""
    for _ in range(64):
        t = btf.type(tid)
        if t.kind in bt.MODIFIER_KINDS:
            tid = t.type  # type: ignore[attr-defined]
            continue
        return tid
    raise SpecError(f"BTF type {tid}: modifier chain too long")


def decode_value(btf: Spec | None, tid: int, raw: bytes) -> Any:
    """A small BTF -> Python decoder: ints, bools, enums, char arrays, arrays of those.

    Structs (and anything else) come back as bytes; a full codec may replace this.
    """
    if btf is None or not tid:
        return bytes(raw)
    try:
        t = btf.type(_strip(btf, tid))
    except BpfkitError:
        return bytes(raw)
    if isinstance(t, bt.Int):
        if t.is_bool and t.size == 1:
            return bool(raw[0]) if raw else False
        return int.from_bytes(raw[: t.size], "little", signed=t.signed)
    if isinstance(t, bt.EnumBase):
        return int.from_bytes(raw[: t.size], "little", signed=t.signed)
    if isinstance(t, bt.Pointer):
        return int.from_bytes(raw[:8], "little")
    if isinstance(t, bt.Array) and t.nelems:
        et = btf.type(_strip(btf, t.type))
        if isinstance(et, bt.Int) and et.size == 1 and (et.is_char or "char" in et.name):
            return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")
        if isinstance(et, (bt.Int, bt.EnumBase)):
            size = et.size
            return [decode_value(btf, t.type, raw[i * size:(i + 1) * size])
                    for i in range(min(t.nelems, len(raw) // max(size, 1)))]
    return bytes(raw)


class ConstText(str):
    """A value typed by a user (``--const NAME=VALUE``): parsed by the variable's BTF type
    (:func:`encode_value`), never written into the variable as the raw characters."""


_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
               "on": True, "off": False}


def _text_int(text: str, what: str, kind: str) -> int:
    try:
        return int(text.replace("_", "") if text.count("_") < 8 else text, 0)
    except ValueError:
        raise UsageError(f"{what}: {text[:40]!r} is not {kind} (decimal, 0x hex, 0o octal or "
                         "0b binary)") from None


def _in_range(n: int, bits: int, signed: bool, text: str, what: str, tname: str) -> int:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= n <= hi:
        raise UsageError(f"{what}: {text[:40]} is out of range for {tname} ({lo} to {hi})")
    return n


def encode_text(btf: Spec | None, tid: int, size: int, text: str, what: str) -> bytes:
    """``text`` as a user typed it, parsed by the variable's type: an integer in any base
    (range-checked), a bool, a char, a string (length-checked), an enumerator by name.
    Anything else is refused with one sentence (:class:`~bpfkit.errors.UsageError`)."""
    text = text.strip()
    t: bt.BTFType | None = btf.type(_strip(btf, tid)) if btf is not None and tid else None
    tname = btf.type_name(tid) if btf is not None and tid else f"a {size}-byte variable"
    if not text:
        raise UsageError(f"{what}: empty value; give {tname} a value")
    if t is None:  # a symbol without BTF: its size is all we know
        n = _text_int(text, what, "an integer")
        _in_range(n, 8 * size, n < 0, text, what, tname)
        return n.to_bytes(size, "little", signed=n < 0)
    if isinstance(t, bt.Int):
        if t.is_bool:
            v = _BOOL_WORDS.get(text.lower())
            if v is None:
                raise UsageError(f"{what}: {text[:40]!r} is not a bool (true/false, 1/0, "
                                 "yes/no, on/off)")
            return bytes([v]).ljust(size, b"\0")
        if t.size == 1 and (t.is_char or "char" in t.name) and len(text.encode()) == 1 \
                and not text.isdigit():
            return text.encode().ljust(size, b"\0")
        n = _text_int(text, what, "an integer")
        return _in_range(n, 8 * t.size, t.signed, text, what, tname).to_bytes(
            t.size, "little", signed=t.signed).ljust(size, b"\0")
    if isinstance(t, bt.EnumBase):
        names = {v.name: v.value for v in t.values}
        if text in names:
            n = names[text]
        elif text.lstrip("+-")[:1].isdigit():
            n = _in_range(_text_int(text, what, "an enumerator or an integer"), 8 * t.size,
                          t.signed, text, what, tname)
        else:
            have = ", ".join(list(names)[:12]) + (", ..." if len(names) > 12 else "")
            raise UsageError(f"{what}: {text[:40]!r} is not an enumerator of {tname} "
                             f"(have: {have or 'none'})")
        return n.to_bytes(t.size, "little", signed=n < 0).ljust(size, b"\0")
    if isinstance(t, bt.Array) and btf is not None:
        et = btf.type(_strip(btf, t.type))
        if isinstance(et, bt.Int) and et.size == 1:
            b = text.encode()
            if len(b) >= t.nelems:
                raise UsageError(f"{what}: a string of {len(b)} bytes does not fit in "
                                 f"{tname} (at most {t.nelems - 1} and the NUL)")
            return b.ljust(size, b"\0")
    raise UsageError(f"{what}: {tname} cannot be set from text (integers, bools, chars, "
                     "strings and enums can)")


def encode_value(btf: Spec | None, tid: int, size: int, value: Any, what: str) -> bytes:
    """Inverse of :func:`decode_value`; bytes of the right size pass through."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        if len(b) > size:
            raise SpecError(f"{what}: {len(b)} bytes do not fit in {size}")
        return b.ljust(size, b"\0")
    t: bt.BTFType | None = None
    if btf is not None and tid:
        t = btf.type(_strip(btf, tid))
    if isinstance(value, ConstText) or (isinstance(value, str)
                                        and isinstance(t, (bt.Int, bt.EnumBase))):
        # an integer variable never receives the characters of a string
        return encode_text(btf, tid, size, value, what)
    if isinstance(value, str):
        b = value.encode()
        if len(b) >= size:
            raise SpecError(f"{what}: string of {len(b)} bytes does not fit in {size} "
                            "(with its NUL)")
        return b.ljust(size, b"\0")
    if isinstance(value, (bool, int)):
        signed = bool(isinstance(t, bt.Int) and t.signed) or (
            isinstance(t, bt.EnumBase) and t.signed) or int(value) < 0
        n = t.size if isinstance(t, (bt.Int, bt.EnumBase)) else size
        try:
            return int(value).to_bytes(n, "little", signed=signed).ljust(size, b"\0")
        except OverflowError:
            raise SpecError(f"{what}: {value} does not fit in {n} bytes") from None
    if isinstance(value, (list, tuple)) and isinstance(t, bt.Array) and btf is not None:
        esize = btf.sizeof(t.type)
        if len(value) > t.nelems:
            raise SpecError(f"{what}: {len(value)} elements for an array of {t.nelems}")
        return b"".join(encode_value(btf, t.type, esize, v, what) for v in value).ljust(
            size, b"\0")
    raise SpecError(f"{what}: cannot encode {type(value).__name__} value {value!r}")


@dataclass
class StructOpsSpec:
    """A ``SEC(".struct_ops[.link]")`` variable: a kernel ops table filled by the object.

    ``data`` is the variable's bytes in the *object's* layout (``type_id`` in the object's
    BTF); the loader re-lays it out into the kernel's ``struct <type_name>``.
    ``programs`` maps a function-pointer member name to the program it points at.
    """

    type_name: str
    type_id: int
    data: bytearray
    programs: dict[str, str] = field(default_factory=dict)
    link: bool = False


@dataclass
class MapSpec:
    """Everything needed to create one map; editable until load."""

    name: str
    type: int
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = PIN_NONE
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None
    #: static initialisation: slot -> program name (prog_array) or map name (map-in-map)
    contents: dict[int, str] = field(default_factory=dict)
    #: initial bytes of a global-data map (``.data``/``.rodata``/``.bss``/``.kconfig``)
    data: bytearray | None = None
    section: str = ""
    freeze: bool = False
    kernel_name: str = ""
    #: set for ``BPF_MAP_TYPE_STRUCT_OPS`` maps (``.struct_ops`` / ``.struct_ops.link``)
    struct_ops: StructOpsSpec | None = None

    @property
    def is_data(self) -> bool:
        return self.data is not None

    def copy(self) -> MapSpec:
        return copy.deepcopy(self)

    def load_copy(self) -> MapSpec:
        """The parts a load changes (sizes, data, slots) copied; see CollectionSpec.load_copy."""
        so = self.struct_ops
        return replace(self, inner=self.inner.load_copy() if self.inner else None,
                       contents=dict(self.contents),
                       data=bytearray(self.data) if self.data is not None else None,
                       struct_ops=replace(so, data=bytearray(so.data),
                                          programs=dict(so.programs)) if so else None)


@dataclass
class VariableSpec:
    """A global variable in a global-data map; ``value`` may be set before load."""

    name: str
    section: str
    offset: int
    size: int
    type_id: int
    _map: MapSpec | None = field(default=None, repr=False, compare=False)
    _btf: Spec | None = field(default=None, repr=False, compare=False)
    linkage: str = "global"

    @property
    def constant(self) -> bool:
        return _is_rodata(self.section)

    @property
    def raw(self) -> bytes:
        if self._map is None or self._map.data is None:
            return b"\0" * self.size
        return bytes(self._map.data[self.offset:self.offset + self.size])

    @raw.setter
    def raw(self, data: bytes) -> None:
        self._write(encode_value(None, 0, self.size, data, f"variable {self.name!r}"))

    @property
    def value(self) -> Any:
        return decode_value(self._btf, self.type_id, self.raw)

    @value.setter
    def value(self, v: Any) -> None:
        self._write(encode_value(self._btf, self.type_id, self.size, v, f"variable {self.name!r}"))

    def _write(self, b: bytes) -> None:
        if self._map is None or self._map.data is None:
            raise SpecError(f"variable {self.name!r} has no backing data map")
        self._map.data[self.offset:self.offset + self.size] = b


@dataclass
class ExternSpec:
    """An ``extern`` resolved at load: ``kind`` is "kconfig", "ksym" or "kfunc"."""

    name: str
    kind: str
    type_id: int
    weak: bool
    typed: bool = True
    offset: int = 0  # kconfig: offset in the .kconfig map
    size: int = 0


@dataclass
class ProgramSpec:
    """One program with its subprograms appended; offsets are relative to the program."""

    name: str
    section: str
    info: SectionInfo
    instructions: list[asm.Instruction]
    license: str = "GPL"
    kern_version: int = 0
    func_info: list[FuncInfo] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)
    core_relos: list[CoreRelo] = field(default_factory=list)
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    autoload: bool = True
    attach_target: str = ""
    flags: int = 0
    prog_type: int = 0
    expected_attach_type: int = 0
    functions: list[str] = field(default_factory=list)
    #: fentry/fexit/freplace on a BPF program: the target ``Program`` (or its fd), whose
    #: BTF names the function of the section (``fentry/<func>``); set before load
    attach_prog: Any = field(default=None, repr=False, compare=False)

    def copy(self) -> ProgramSpec:
        # the attach target is a live kernel object: share it, never deep-copy it
        memo: dict[int, Any] = {}
        if self.attach_prog is not None:
            memo[id(self.attach_prog)] = self.attach_prog
        return copy.deepcopy(self, memo)

    def source_of(self, insn_idx: int) -> str | None:
        """``file:line: text`` of instruction slot ``insn_idx`` from line info."""
        best: LineInfo | None = None
        for li in self.line_info:
            if li.insn_off // 8 <= insn_idx and (best is None or li.insn_off >= best.insn_off):
                best = li
        if best is None:
            return None
        return f"{os.path.basename(best.file_name)}:{best.line}: {best.line_text.strip()}"
