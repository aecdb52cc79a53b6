"""ELF object -> collection spec: programs, maps, global variables and externs.

Why a separate, pure step: parsing needs no privileges and no kernel, is deterministic
and can be fuzzed; everything that depends on the running kernel (map fds, CO-RE,
kconfig values, ksym addresses, kfunc ids) happens in :mod:`bpfkit.loader`.  Programs
keep *symbolic* references (``Instruction.ref``/``ref_kind``) until load, so a user can
edit map sizes, constants or autoload flags in between.

Reference kinds on instructions:

* ``"map"``        ld_imm64 of a map (``ref`` = map name)
* ``"map_value"``  ld_imm64 of an address inside a global-data map (``meta["offset"]``)
* ``"call"``       bpf-to-bpf call (``ref`` = callee function name)
* ``"func"``       ld_imm64 of a function address, for callbacks (``ref`` = function)
* ``"kfunc"``      call of a kernel function (``ref`` = extern name)
* ``"ksym"``       ld_imm64 of a kernel symbol (``ref`` = extern name)

The first instruction of every function carries ``meta["func"] = name`` so the loader
can recompute call offsets after edits.
"""

from __future__ import annotations

import copy
import os
import struct
from dataclasses import dataclass, field, replace
from typing import Any

from .. import asm
from .._consts import BPF_F_LINK, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MapType, ProgramType
from ..btf import BTFExt, CoreRelo, FuncInfo, LineInfo, Spec, parse_btf_ext
from ..btf import types as bt
from ..dwarf import DebugInfo
from ..elf import (
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_SECTION,
    STV_HIDDEN,
    ElfFile,
    Symbol,
)
from ..errors import BpfkitError, DwarfError, ParseError, SpecError
from ..inputfile import read_regular
from ..linker import _clone, _fix_calls
from ..sections import SectionInfo, parse_section
from .model import (
    EM_BPF,
    KCONFIG_MAP,
    PIN_BY_NAME,
    PIN_NONE,
    ExternSpec,
    MapSpec,
    ProgramSpec,
    StructOpsSpec,
    VariableSpec,
    _is_rodata,
    _is_struct_ops_link,
    _strip,
    is_data_section,
    is_struct_ops_section,
)

__all__ = ["CollectionSpec"]

_PSEUDO_FUNC = asm.BPF_PSEUDO_FUNC



# ----------------------------------------------------------------------------- specs






# ----------------------------------------------------------------------------- parsing

@dataclass
class _Func:
    name: str
    section: str
    start: int  # index into the section's decoded instruction list
    end: int
    slot: int  # slot offset in the section
    bind: int


# BPF objects are kilobytes to a few megabytes; the cap only keeps a wrong path harmless.
MAX_OBJECT_FILE = 1 << 30
# A NOBITS section (.bss) occupies no file space, so its size is the one number in an
# object that would make parsing allocate without bound: cap it above what the kernel takes.
MAX_NOBITS = 32 << 20


class _Parser:
    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        self.elf = ElfFile(data, name=name)
        if self.elf.machine != EM_BPF:
            raise SpecError(f"{name}: not a BPF object (ELF machine {self.elf.machine}, "
                            "want EM_BPF 247)")
        if self.elf.byteorder != "little":
            raise SpecError(f"{name}: big-endian BPF objects are not supported")
        self.secs = {s.name: s for s in self.elf.sections}
        self.by_index = {s.index: s for s in self.elf.sections}
        self.symbols = self.elf.symbols()
        self.btf: Spec | None = None
        self.ext: BTFExt | None = None
        btf_sec = self.secs.get(".BTF")
        if btf_sec is not None:
            self.btf = Spec.from_bytes(btf_sec.data())
            ext_sec = self.secs.get(".BTF.ext")
            if ext_sec is not None:
                self.ext = parse_btf_ext(ext_sec.data(), self.btf)
        self.datasecs: dict[str, bt.Datasec] = {}
        if self.btf is not None:
            for t in self.btf:
                if isinstance(t, bt.Datasec):
                    self.datasecs[t.name] = t

    # -- helpers
    def sec_name(self, shndx: int) -> str:
        s = self.by_index.get(shndx)
        return s.name if s is not None else ""

    def sec_data(self, name: str) -> bytes:
        s = self.secs[name]
        if s.type == SHT_NOBITS:
            if s.size > MAX_NOBITS:
                raise SpecError(f"{self.name}: section {name} declares {s.size} bytes, more "
                                f"than a BPF map value can hold ({MAX_NOBITS >> 20} MiB here; "
                                "the kernel's own limit is KMALLOC_MAX_SIZE)")
            return bytes(s.size)
        return s.data()

    def relocations_for(self, sec_index: int) -> list[Any]:
        rs = self.elf.relocation_sections().get(sec_index)
        return self.elf.relocations(rs) if rs is not None else []

    def obj_name(self) -> str:
        base = os.path.basename(self.name)
        base = base.split(".", 1)[0] or "obj"
        return "".join(c if c.isalnum() or c in "_." else "_" for c in base)

    # -- top level
    def parse(self) -> CollectionSpec:
        lic = "GPL"
        kver = 0
        if "license" in self.secs:
            lic = self.sec_data("license").split(b"\0", 1)[0].decode("utf-8", "replace")
        if "version" in self.secs:
            v = self.sec_data("version")
            if len(v) != 4:
                raise SpecError(f"{self.name}: 'version' section must be 4 bytes, not {len(v)}")
            kver = struct.unpack("<I", v)[0]
        spec = CollectionSpec(license=lic, kern_version=kver, btf=self.btf, btf_ext=self.ext,
                              name=self.obj_name())
        self.spec = spec
        for dname in self.datasecs:
            dsec = self.secs.get(dname)
            if dsec is None:
                continue
            spec._sec_sizes[dname] = dsec.size
            spec._sym_offsets[dname] = {s.name: (s.value, s.size) for s in self.symbols
                                        if s.shndx == dsec.index and s.name
                                        and s.type != STT_SECTION}
        # __hidden (and local) subprograms are static to the verifier, as libbpf marks them:
        # global functions are verified alone, which __weak __hidden helpers do not expect.
        spec._static_funcs = {sym.name for sym in self.symbols
                              if sym.type == STT_FUNC and sym.name
                              and (sym.visibility == STV_HIDDEN or sym.bind == STB_LOCAL)}
        self.parse_externs()
        self.parse_btf_maps()
        self.parse_legacy_maps()
        self.parse_data_maps()
        self.parse_programs()
        self.parse_struct_ops()
        self.parse_static_init()
        return spec

    # -- externs
    def parse_externs(self) -> None:
        externs: dict[str, ExternSpec] = {}
        undef = {s.name: s for s in self.symbols if s.shndx == SHN_UNDEF and s.name}
        kconf_off = 0
        kconf: list[tuple[int, int, str, int, bool]] = []
        for secname, kind in ((".kconfig", "kconfig"), (".ksyms", "ksym")):
            ds = self.datasecs.get(secname)
            if ds is None or self.btf is None:
                continue
            for vs in ds.vars:
                t = self.btf.type(vs.type)
                sym = undef.get(t.name)
                weak = bool(sym is not None and sym.bind == STB_WEAK)
                if isinstance(t, bt.Func):
                    externs[t.name] = ExternSpec(t.name, "kfunc", t.id, weak)
                    continue
                if not isinstance(t, bt.Var):
                    raise SpecError(f"{self.name}: {secname} entry {t.name!r} is not a VAR")
                if kind == "kconfig":
                    kconf.append((min(max(self.btf.alignof(t.type), 1), 8),
                                  self.btf.sizeof(t.type), t.name, t.type, weak))
                else:
                    target = self.btf.type(_strip(self.btf, t.type))
                    typed = not isinstance(target, bt.Void)
                    externs[t.name] = ExternSpec(t.name, "ksym", t.type, weak, typed)
        # libbpf's layout of the .kconfig map: by alignment (largest first), then size, then
        # name, each at its alignment; the map ends with the last one
        for align, size, name, tid, weak in sorted(kconf, key=lambda k: (-k[0], k[1], k[2])):
            kconf_off = (kconf_off + align - 1) // align * align
            externs[name] = ExternSpec(name, "kconfig", tid, weak, True, kconf_off, size)
            kconf_off += size
        # externs without BTF (e.g. untyped kfunc declarations) are found via relocations
        self.spec.externs = externs
        if kconf:
            ds = self.datasecs.get(".kconfig")
            m = MapSpec(name=KCONFIG_MAP, type=MapType.ARRAY, key_size=4, value_size=kconf_off,
                        max_entries=1, flags=BPF_F_MMAPABLE | BPF_F_RDONLY_PROG,
                        data=bytearray(kconf_off), section=".kconfig", freeze=True,
                        value_type_id=ds.id if ds is not None else 0,
                        kernel_name=self.internal_name(".kconfig"))
            self.spec.maps[KCONFIG_MAP] = m

    def internal_name(self, sec: str) -> str:
        """libbpf's kernel-side name for a global-data map: ``<obj[:8]>.<section>``."""
        if len(sec) >= 16 or "." in sec[1:]:
            name = sec
        else:
            name = self.spec.name[:min(8, 15 - len(sec))] + sec
        return name[:15]

    # -- maps
    def map_syms(self, secname: str) -> list[Symbol]:
        sec = self.secs.get(secname)
        if sec is None:
            return []
        return sorted((s for s in self.symbols if s.shndx == sec.index and s.name
                       and s.type != STT_SECTION), key=lambda s: s.value)

    def parse_btf_maps(self) -> None:
        sec = self.secs.get(".maps")
        if sec is None:
            return
        if self.btf is None:
            raise SpecError(f"{self.name}: '.maps' section needs BTF (compile with -g)")
        ds = self.datasecs.get(".maps")
        if ds is None:
            raise SpecError(f"{self.name}: BTF has no DATASEC for '.maps'")
        syms = {s.name: s for s in self.map_syms(".maps")}
        self.map_offsets: dict[int, MapSpec] = {}
        for vs in ds.vars:
            var = self.btf.type(vs.type)
            if not isinstance(var, bt.Var):
                raise SpecError(f"{self.name}: .maps entry {vs.type} is not a VAR")
            m = self.btf_map_def(var.name, var.type, inner=False)
            m.section = ".maps"
            sym = syms.get(var.name)
            off = sym.value if sym is not None else vs.offset
            self.map_offsets[off] = m
            m.kernel_name = var.name[:15]
            if var.name in self.spec.maps:
                raise SpecError(f"{self.name}: duplicate map {var.name!r}")
            self.spec.maps[var.name] = m
            self.spec._map_size[var.name] = (sym.size if sym is not None and sym.size
                                             else self.btf.sizeof(var.type))

    def btf_map_def(self, name: str, tid: int, inner: bool) -> MapSpec:
        assert self.btf is not None
        st = self.btf.type(_strip(self.btf, tid))
        if not isinstance(st, bt.Struct):
            raise SpecError(f"{self.name}: map {name!r} is not a struct in BTF")
        m = MapSpec(name=name, type=0)
        have_type = False
        for mem in st.members:
            what = f"map {name!r} field {mem.name!r}"
            mt = self.btf.type(_strip(self.btf, mem.type))
            if mem.name in ("type", "max_entries", "map_flags", "numa_node", "key_size",
                            "value_size", "pinning", "map_extra"):
                val = self._uint(mt, what)
                if mem.name == "type":
                    m.type, have_type = val, True
                elif mem.name == "max_entries":
                    m.max_entries = val
                elif mem.name == "map_flags":
                    m.flags = val
                elif mem.name == "numa_node":
                    m.numa_node = val
                elif mem.name == "key_size":
                    if m.key_size and m.key_size != val:
                        raise SpecError(f"{what}: conflicts with key type size {m.key_size}")
                    m.key_size = val
                elif mem.name == "value_size":
                    if m.value_size and m.value_size != val:
                        raise SpecError(f"{what}: conflicts with value type size {m.value_size}")
                    m.value_size = val
                elif mem.name == "pinning":
                    if val not in (PIN_NONE, PIN_BY_NAME):
                        raise SpecError(f"{what}: unsupported pinning {val}")
                    m.pinning = val
                else:
                    m.map_extra = val
            elif mem.name in ("key", "value"):
                if not isinstance(mt, bt.Pointer):
                    raise SpecError(f"{what}: must be a pointer (__type)")
                size = self.btf.sizeof(mt.type)
                if mem.name == "key":
                    m.key_size, m.key_type_id = size, mt.type
                else:
                    m.value_size, m.value_type_id = size, mt.type
            elif mem.name == "values":
                if not isinstance(mt, bt.Array) or mt.nelems != 0:
                    raise SpecError(f"{what}: must be a flexible array (__array)")
                pt = self.btf.type(_strip(self.btf, mt.type))
                if not isinstance(pt, bt.Pointer):
                    raise SpecError(f"{what}: elements must be pointers")
                target = self.btf.type(_strip(self.btf, pt.type))
                m.value_size = 4
                if isinstance(target, bt.Struct):
                    if inner:
                        raise SpecError(f"{what}: map-in-map nesting deeper than 2")
                    m.inner = self.btf_map_def(f"{name}.inner", pt.type, inner=True)
                elif not isinstance(target, bt.FuncProto):
                    raise SpecError(f"{what}: must point to a map struct or a function")
            else:
                # libbpf tolerates unknown fields only when they are zero-sized; be strict
                raise SpecError(f"{self.name}: map {name!r} has unknown field {mem.name!r}")
        if not have_type:
            raise SpecError(f"{self.name}: map {name!r} has no 'type'")
        return m

    def _uint(self, t: bt.BTFType, what: str) -> int:
        if not isinstance(t, bt.Pointer):
            raise SpecError(f"{what}: must be declared with __uint()")
        assert self.btf is not None
        arr = self.btf.type(_strip(self.btf, t.type))
        if not isinstance(arr, bt.Array):
            raise SpecError(f"{what}: must be declared with __uint()")
        return arr.nelems

    def parse_legacy_maps(self) -> None:
        sec = self.secs.get("maps")
        if sec is None:
            return
        data = self.sec_data("maps")
        syms = self.map_syms("maps")
        self.legacy_offsets: dict[int, MapSpec] = {}
        for i, s in enumerate(syms):
            size = s.size or ((syms[i + 1].value if i + 1 < len(syms) else len(data)) - s.value)
            if size < 16 or s.value + size > len(data):
                raise SpecError(f"{self.name}: legacy map {s.name!r} definition is {size} bytes "
                                f"at offset {s.value} (section has {len(data)})")
            raw = data[s.value:s.value + size].ljust(28, b"\0")
            mtype, ks, vs, me, fl, _inner_idx, pin = struct.unpack_from("<7I", raw)
            m = MapSpec(name=s.name, type=mtype, key_size=ks, value_size=vs, max_entries=me,
                        flags=fl, pinning=pin if size >= 28 else 0, section="maps",
                        kernel_name=s.name[:15])
            self.legacy_offsets[s.value] = m
            self.spec.maps[s.name] = m

    def parse_data_maps(self) -> None:
        for sec in self.elf.sections:
            if not is_data_section(sec.name) or sec.type not in (SHT_PROGBITS, SHT_NOBITS):
                continue
            if not sec.flags & SHF_ALLOC or sec.flags & SHF_EXECINSTR or sec.size == 0:
                continue
            ro = _is_rodata(sec.name)
            flags = BPF_F_RDONLY_PROG if ro else 0
            ds = self.datasecs.get(sec.name)
            if ds is not None and self.btf is not None and any(
                    isinstance(v := self.btf.type(vs.type), bt.Var)
                    and v.linkage != bt.BTF_VAR_STATIC for vs in ds.vars):
                # as libbpf's map_is_mmapable: only sections with a non-static variable
                # (string literals and static locals alone are not user-visible)
                flags |= BPF_F_MMAPABLE
            m = MapSpec(name=sec.name, type=MapType.ARRAY, key_size=4, value_size=sec.size,
                        max_entries=1, flags=flags, data=bytearray(self.sec_data(sec.name)),
                        section=sec.name, freeze=ro, value_type_id=ds.id if ds else 0,
                        kernel_name=self.internal_name(sec.name))
            self.spec.maps[sec.name] = m
            syms = {s.name: s for s in self.symbols if s.shndx == sec.index and s.name
                    and s.type != STT_SECTION}
            if ds is not None and self.btf is not None:
                for vs in ds.vars:
                    var = self.btf.type(vs.type)
                    if not isinstance(var, bt.Var):
                        continue
                    sym = syms.get(var.name)
                    off = sym.value if sym is not None else vs.offset
                    size = self.btf.sizeof(var.type)
                    if off + size > sec.size:
                        raise SpecError(f"{self.name}: variable {var.name!r} [{off}, +{size}) "
                                        f"lies outside {sec.name} ({sec.size} bytes)")
                    self.spec.variables[var.name] = VariableSpec(
                        var.name, sec.name, off, size, var.type, m, self.btf,
                        "static" if var.linkage == bt.BTF_VAR_STATIC else "global")
            else:
                for s in syms.values():
                    if s.size and s.value + s.size <= sec.size:
                        self.spec.variables[s.name] = VariableSpec(
                            s.name, sec.name, s.value, s.size, 0, m, None,
                            "static" if s.bind == STB_LOCAL else "global")

    # -- programs
    def parse_programs(self) -> None:
        self.funcs: dict[str, list[_Func]] = {}  # per section, sorted
        self.insns: dict[str, list[asm.Instruction]] = {}
        self.slot_index: dict[str, dict[int, int]] = {}
        prog_secs = []
        for sec in self.elf.sections:
            if not (sec.type == SHT_PROGBITS and sec.flags & SHF_EXECINSTR) or sec.size == 0:
                continue
            if sec.name != ".text":
                prog_secs.append(sec)
            raw = sec.data()
            if len(raw) % 8:
                raise SpecError(f"{self.name}: section {sec.name!r} size {len(raw)} is not a "
                                "multiple of 8")
            insns = asm.decode(raw)
            self.insns[sec.name] = insns
            idx: dict[int, int] = {}
            slot = 0
            for i, ins in enumerate(insns):
                idx[slot] = i
                slot += ins.size
            self.slot_index[sec.name] = idx
            fs: list[_Func] = []
            for s in self.symbols:
                if s.shndx != sec.index or s.type != STT_FUNC or not s.name:
                    continue
                if s.value % 8 or s.size % 8 or s.value + s.size > len(raw):
                    raise SpecError(f"{self.name}: function {s.name!r} in {sec.name!r} has bad "
                                    f"bounds {s.value}+{s.size}")
                a, b = s.value // 8, (s.value + s.size) // 8
                if a not in idx or (b not in idx and b != slot):
                    raise SpecError(f"{self.name}: function {s.name!r} splits an instruction")
                fs.append(_Func(s.name, sec.name, idx[a], idx.get(b, len(insns)), a, s.bind))
            fs.sort(key=lambda f: f.slot)
            self.funcs[sec.name] = fs
            self.resolve_relocations(sec.index, sec.name, insns, idx)
            for f in fs:
                insns[f.start].meta["func"] = f.name
        for sec in prog_secs:
            info = parse_section(sec.name)
            for f in self.funcs.get(sec.name, []):
                if f.bind == STB_LOCAL:
                    raise SpecError(f"{self.name}: program {f.name!r} in {sec.name!r} is static; "
                                    "programs must be global functions")
                self.spec.programs[f.name] = self.build_program(f, info)

    def find_func(self, sec: str, slot: int) -> _Func:
        for f in self.funcs.get(sec, []):
            if f.slot == slot:
                return f
        raise SpecError(f"{self.name}: no function starts at instruction {slot} of {sec!r}")

    def resolve_relocations(self, sec_index: int, sec: str, insns: list[asm.Instruction],
                            idx: dict[int, int]) -> None:
        relos = {r.offset: r for r in self.relocations_for(sec_index)}
        for off, r in relos.items():
            if off % 8 or off // 8 not in idx:
                raise SpecError(f"{self.name}: relocation at {off:#x} in {sec!r} does not "
                                "point at an instruction")
            ins = insns[idx[off // 8]]
            self.apply_relo(sec, ins, r.symbol, off // 8)
        # calls within the same section need no relocation
        for slot, i in idx.items():
            ins = insns[i]
            if ins.is_pseudo_call and ins.ref is None:
                target = slot + ins.imm + 1
                ins.ref, ins.ref_kind = self.find_func(sec, target).name, "call"
                ins.meta["section"] = sec

    def apply_relo(self, sec: str, ins: asm.Instruction, sym: Symbol, slot: int) -> None:
        where = f"{self.name}: relocation in {sec!r} at instruction {slot}"
        if sym.shndx == SHN_UNDEF:
            ext = self.spec.externs.get(sym.name)
            if ins.is_call:
                if ext is None:
                    ext = ExternSpec(sym.name, "kfunc", 0, sym.bind == STB_WEAK)
                    self.spec.externs[sym.name] = ext
                ins.ref, ins.ref_kind = sym.name, "kfunc"
                return
            if not ins.is_ld_imm64:
                raise SpecError(f"{where}: extern {sym.name!r} used by a non-ld_imm64")
            if ext is None:
                raise SpecError(f"{where}: unknown extern {sym.name!r} (declare it __kconfig "
                                "or __ksym)")
            if ext.kind == "kconfig":
                ins.ref, ins.ref_kind = KCONFIG_MAP, "map_value"
                ins.meta["offset"] = ext.offset
                ins.meta["extern"] = sym.name
            else:
                ins.ref, ins.ref_kind = sym.name, "ksym"
            return
        tsec = self.sec_name(sym.shndx)
        tsecobj = self.by_index.get(sym.shndx)
        if ins.is_call:
            if not ins.is_pseudo_call:
                raise SpecError(f"{where}: helper call with a relocation")
            target = sym.value // 8 + ins.imm + 1
            ins.ref, ins.ref_kind = self.find_func(tsec, target).name, "call"
            ins.meta["section"] = tsec
            return
        if not ins.is_ld_imm64:
            raise SpecError(f"{where}: relocation on a non-ld_imm64 instruction {ins}")
        if tsecobj is not None and tsecobj.flags & SHF_EXECINSTR:
            off = sym.value + _s32(ins.imm)
            if off % 8:
                raise SpecError(f"{where}: function address not instruction aligned")
            ins.ref, ins.ref_kind = self.find_func(tsec, off // 8).name, "func"
            ins.meta["section"] = tsec
            return
        if tsec == ".maps":
            m = getattr(self, "map_offsets", {}).get(sym.value)
            if m is None:
                raise SpecError(f"{where}: no map at offset {sym.value} of .maps")
            ins.ref, ins.ref_kind = m.name, "map"
            return
        if tsec == "maps":
            m = getattr(self, "legacy_offsets", {}).get(sym.value + _s32(ins.imm))
            if m is None:
                raise SpecError(f"{where}: no legacy map at offset {sym.value}")
            ins.ref, ins.ref_kind = m.name, "map"
            return
        if tsec in self.spec.maps and self.spec.maps[tsec].is_data:
            ins.ref, ins.ref_kind = tsec, "map_value"
            ins.meta["offset"] = sym.value + _s32(ins.imm)
            return
        raise SpecError(f"{where}: reference to {sym.name or tsec!r} in section {tsec!r}, "
                        "which is not a map, data or code section")

    def build_program(self, f: _Func, info: SectionInfo) -> ProgramSpec:
        out: list[asm.Instruction] = []
        fi: list[FuncInfo] = []
        li: list[LineInfo] = []
        cr: list[CoreRelo] = []
        placed: dict[tuple[str, str], int] = {}
        order: list[str] = []

        def place(fn: _Func) -> None:
            base_slot = sum(i.size for i in out)
            placed[(fn.section, fn.name)] = base_slot
            order.append(fn.name)
            body = [_clone(i) for i in self.insns[fn.section][fn.start:fn.end]]
            out.extend(body)
            self.move_ext(fn, base_slot, fi, li, cr)
            for ins in body:
                if ins.ref_kind in ("call", "func"):
                    tsec = ins.meta.get("section", fn.section)
                    if tsec != ".text" and tsec != fn.section:
                        raise SpecError(f"{self.name}: {fn.name} calls {ins.ref!r} in "
                                        f"{tsec!r}: subprograms must be in .text")
                    if (tsec, ins.ref) in placed or (tsec == fn.section and
                                                     ins.ref == f.name):
                        continue
                    callee = next((g for g in self.funcs.get(tsec, []) if g.name == ins.ref),
                                  None)
                    if callee is None:
                        raise SpecError(f"{self.name}: unknown subprogram {ins.ref!r}")
                    place(callee)

        place(f)
        _fix_calls(out, f.name)
        name = f.name
        p = ProgramSpec(
            name=name, section=info.section, info=info, instructions=out,
            license=self.spec.license, kern_version=self.spec.kern_version, func_info=fi,
            line_info=li, core_relos=cr, attach_target=info.attach_target,
            flags=info.prog_flags, prog_type=int(info.prog_type),
            expected_attach_type=info.expected_attach_type, functions=order)
        if self.ext is not None:
            p.func_info_rec_size = self.ext.func_info_rec_size
            p.line_info_rec_size = self.ext.line_info_rec_size
        return p

    def move_ext(self, fn: _Func, base_slot: int, fi: list[FuncInfo], li: list[LineInfo],
                 cr: list[CoreRelo]) -> None:
        if self.ext is None:
            return
        lo, hi = fn.slot * 8, fn.slot * 8 + sum(
            i.size for i in self.insns[fn.section][fn.start:fn.end]) * 8
        delta = base_slot * 8 - lo
        for rec in self.ext.func_info.get(fn.section, []):
            if lo <= rec.insn_off < hi:
                fi.append(copy.copy(rec))
                fi[-1].insn_off += delta
        for lrec in self.ext.line_info.get(fn.section, []):
            if lo <= lrec.insn_off < hi:
                li.append(copy.copy(lrec))
                li[-1].insn_off += delta
        for crec in self.ext.core_relos.get(fn.section, []):
            if lo <= crec.insn_off < hi:
                cr.append(copy.copy(crec))
                cr[-1].insn_off += delta

    # -- struct_ops
    def parse_struct_ops(self) -> None:
        """``SEC(".struct_ops[.link]")`` variables -> STRUCT_OPS maps.

        The function-pointer members are relocations against programs of
        ``SEC("struct_ops/...")``; struct_ops programs no map refers to are not loaded
        (as libbpf), since only a map says which kernel type and member they implement.
        """
        used: set[str] = set()
        for sec in self.elf.sections:
            if not is_struct_ops_section(sec.name) or sec.type not in (SHT_PROGBITS,
                                                                        SHT_NOBITS):
                continue
            if self.btf is None:
                raise SpecError(f"{self.name}: {sec.name!r} needs BTF (compile with -g)")
            ds = self.datasecs.get(sec.name)
            if ds is None:
                raise SpecError(f"{self.name}: BTF has no DATASEC for {sec.name!r}")
            data = self.sec_data(sec.name)
            syms = {s.name: s for s in self.symbols if s.shndx == sec.index and s.name
                    and s.type != STT_SECTION}
            spans: list[tuple[int, int, MapSpec]] = []
            for vs in ds.vars:
                var = self.btf.type(vs.type)
                if not isinstance(var, bt.Var):
                    raise SpecError(f"{self.name}: {sec.name} entry {vs.type} is not a VAR")
                tid = _strip(self.btf, var.type)
                st = self.btf.type(tid)
                if not isinstance(st, bt.Struct) or not st.name:
                    raise SpecError(f"{self.name}: struct_ops variable {var.name!r} must be a "
                                    f"named struct (a kernel ops type), not "
                                    f"{self.btf.type_name(var.type)}")
                sym = syms.get(var.name)
                off = sym.value if sym is not None else vs.offset
                size = st.size
                if off < 0 or off + size > len(data):
                    raise SpecError(f"{self.name}: struct_ops variable {var.name!r} "
                                    f"[{off}, +{size}) lies outside {sec.name} "
                                    f"({len(data)} bytes)")
                if var.name in self.spec.maps:
                    raise SpecError(f"{self.name}: duplicate map {var.name!r}")
                link = _is_struct_ops_link(sec.name)
                m = MapSpec(name=var.name, type=MapType.STRUCT_OPS, key_size=4,
                            value_size=size, max_entries=1,
                            flags=BPF_F_LINK if link else 0, value_type_id=tid,
                            section=sec.name, kernel_name=var.name[:15],
                            struct_ops=StructOpsSpec(st.name, tid,
                                                     bytearray(data[off:off + size]),
                                                     link=link))
                self.spec.maps[var.name] = m
                spans.append((off, size, m))
            for r in self.relocations_for(sec.index):
                owner = next(((o, m) for o, sz, m in spans if o <= r.offset < o + sz), None)
                if owner is None:
                    raise SpecError(f"{self.name}: {sec.name} relocation at {r.offset:#x} is "
                                    "outside every struct_ops variable")
                base, m = owner
                so = m.struct_ops
                assert so is not None
                st = self.btf.type(so.type_id)
                assert isinstance(st, bt.Struct)
                rel = r.offset - base
                mem = next((x for x in st.members if x.bit_offset == rel * 8), None)
                if mem is None or rel + 8 > len(so.data):
                    raise SpecError(f"{self.name}: struct_ops {m.name!r}: relocation at offset "
                                    f"{rel} is not at a member")
                mt = self.btf.type(_strip(self.btf, mem.type))
                pt = self.btf.type(_strip(self.btf, mt.type)) if isinstance(mt, bt.Pointer) \
                    else None
                if not isinstance(pt, bt.FuncProto):
                    raise SpecError(f"{self.name}: struct_ops {m.name!r} member {mem.name!r} "
                                    "is not a function pointer but is initialised with an "
                                    "address")
                sym = r.symbol
                # REL relocations keep the addend in the data (section symbols use it)
                addend = int.from_bytes(so.data[rel:rel + 8], "little")
                target = sym.value + (addend if sym.type == STT_SECTION else 0)
                tsec = self.sec_name(sym.shndx)
                if target % 8:
                    raise SpecError(f"{self.name}: struct_ops {m.name!r} member {mem.name!r} "
                                    "points inside an instruction")
                fn = next((f for f in self.funcs.get(tsec, []) if f.slot == target // 8),
                          None)
                prog = self.spec.programs.get(fn.name) if fn is not None else None
                if prog is None:
                    raise SpecError(f"{self.name}: struct_ops {m.name!r} member {mem.name!r} "
                                    f"points at {sym.name or tsec!r}, which is not a program")
                if prog.prog_type != ProgramType.STRUCT_OPS:
                    raise SpecError(f"{self.name}: struct_ops {m.name!r} member {mem.name!r} "
                                    f"points at program {prog.name!r} of section "
                                    f"{prog.section!r}; it must be SEC(\"struct_ops/...\")")
                so.programs[mem.name] = prog.name
                so.data[rel:rel + 8] = bytes(8)
                used.add(prog.name)
        for p in self.spec.programs.values():
            if p.prog_type == ProgramType.STRUCT_OPS and p.name not in used:
                p.autoload = False

    # -- static initialisers of .maps (prog_array / map-in-map)
    def parse_static_init(self) -> None:
        sec = self.secs.get(".maps")
        if sec is None or self.btf is None:
            return
        relos = self.relocations_for(sec.index)
        if not relos:
            return
        spans = sorted((off, m) for off, m in getattr(self, "map_offsets", {}).items())
        for r in relos:
            owner: MapSpec | None = None
            base = 0
            for off, m in spans:
                if off <= r.offset < off + self.spec._map_size.get(m.name, 0):
                    owner, base = m, off
            if owner is None:
                raise SpecError(f"{self.name}: .maps relocation at {r.offset:#x} is outside "
                                "every map")
            st = self.btf.type(_strip(self.btf, self._map_var_type(owner.name)))
            assert isinstance(st, bt.Struct)
            try:
                vals = st.member("values")
            except KeyError:
                raise SpecError(f"{self.name}: map {owner.name!r} is initialised but has no "
                                "'values' field") from None
            rel = r.offset - base - vals.bit_offset // 8
            if rel < 0 or rel % 8:
                raise SpecError(f"{self.name}: bad initialiser offset in map {owner.name!r}")
            slot = rel // 8
            if slot >= owner.max_entries:
                raise SpecError(f"{self.name}: map {owner.name!r} initialiser slot {slot} >= "
                                f"max_entries {owner.max_entries}")
            target = r.symbol.name
            if owner.type == MapType.PROG_ARRAY:
                if target not in self.spec.programs:
                    raise SpecError(f"{self.name}: prog_array {owner.name!r} slot {slot} refers "
                                    f"to {target!r}, which is not a program")
            elif owner.inner is not None:
                if target not in self.spec.maps:
                    raise SpecError(f"{self.name}: map {owner.name!r} slot {slot} refers to "
                                    f"{target!r}, which is not a map")
            else:
                raise SpecError(f"{self.name}: map {owner.name!r} of type {owner.type} cannot "
                                "be initialised statically")
            owner.contents[slot] = target

    def _map_var_type(self, name: str) -> int:
        assert self.btf is not None
        ds = self.datasecs[".maps"]
        for vs in ds.vars:
            v = self.btf.type(vs.type)
            if isinstance(v, bt.Var) and v.name == name:
                return v.type
        raise SpecError(f"{self.name}: map {name!r} not in .maps BTF")


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v




@dataclass
class CollectionSpec:
    """Everything an object file describes, before any kernel object exists."""

    programs: dict[str, ProgramSpec] = field(default_factory=dict)
    maps: dict[str, MapSpec] = field(default_factory=dict)
    variables: dict[str, VariableSpec] = field(default_factory=dict)
    externs: dict[str, ExternSpec] = field(default_factory=dict)
    license: str = "GPL"
    kern_version: int = 0
    btf: Spec | None = None
    btf_ext: BTFExt | None = None
    name: str = "obj"
    _map_size: dict[str, int] = field(default_factory=dict, repr=False)
    _sec_sizes: dict[str, int] = field(default_factory=dict, repr=False)
    _sym_offsets: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict,
                                                                repr=False)
    _static_funcs: set[str] = field(default_factory=set, repr=False)
    _object: bytes | None = field(default=None, repr=False, compare=False)
    _dwarf: Any = field(default=None, repr=False, compare=False)

    def dwarf(self) -> DebugInfo:
        """The object's DWARF (parsed on first use): the types ``.BTF`` leaves out, such as
        a ``struct event`` used only as a local.  Raises DwarfError when the object has
        none (built without ``-g``, or stripped)."""
        if self._dwarf is None:
            if self._object is None:
                raise DwarfError(f"{self.name}: no object bytes kept to read DWARF from")
            self._dwarf = DebugInfo.from_elf(ElfFile(self._object, name=self.name))
        return self._dwarf

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CollectionSpec:
        p = os.fspath(path)
        return cls.from_bytes(read_regular(p, "BPF object", MAX_OBJECT_FILE, SpecError), name=p)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, name: str = "<bytes>"
                   ) -> CollectionSpec:
        """Parse an object; every failure is a SpecError/ElfError/BTFError."""
        try:
            raw = bytes(data)
            spec = _Parser(raw, name).parse()
            spec._object = raw
            return spec
        except (BpfkitError, ParseError):
            raise
        except (IndexError, KeyError, ValueError, struct.error, TypeError, AttributeError,
                RecursionError, OverflowError, AssertionError) as e:
            raise SpecError(f"{name}: malformed BPF object ({type(e).__name__}: {e})") from e

    def copy(self) -> CollectionSpec:
        """A deep copy that shares the (read-only) BTF, so it is cheap to load twice."""
        memo: dict[int, Any] = {}
        for p in self.programs.values():
            if p.attach_prog is not None:
                memo[id(p.attach_prog)] = p.attach_prog
        if self.btf is not None:
            memo[id(self.btf)] = self.btf
        if self.btf_ext is not None:
            memo[id(self.btf_ext)] = self.btf_ext
        if self._dwarf is not None:
            memo[id(self._dwarf)] = self._dwarf
        return copy.deepcopy(self, memo)

    def load_copy(self) -> CollectionSpec:
        """A copy for one load: what the loader and load options change is new (maps with
        their data, program attributes, variables pointing at the new maps), the rest is
        shared read-only: instructions (the loader relocates its own copy), BTF, BTF.ext,
        func/line info and CO-RE records.  Far cheaper than :meth:`copy`."""
        maps = {n: m.load_copy() for n, m in self.maps.items()}
        progs = {n: replace(p) for n, p in self.programs.items()}
        variables = {n: replace(v, _map=maps.get(v.section, v._map))
                     for n, v in self.variables.items()}
        return replace(self, programs=progs, maps=maps, variables=variables,
                       externs=dict(self.externs))

    @property
    def constants(self) -> dict[str, VariableSpec]:
        return {n: v for n, v in self.variables.items() if v.constant}

    def set_constants(self, values: dict[str, Any]) -> None:
        """Set ``const volatile`` globals (rodata) before load; unknown names are an error."""
        for n, v in values.items():
            var = self.variables.get(n)
            if var is None:
                have = ", ".join(sorted(self.variables)) or "none"
                raise SpecError(f"no global variable {n!r} (have: {have})")
            var.value = v

    def load(self, **kw: Any) -> Any:
        """Create every map and program in the kernel (see :func:`bpfkit.loader.load`)."""
        from ..loader import load_spec
        return load_spec(self, **kw)
