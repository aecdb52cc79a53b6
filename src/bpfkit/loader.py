"""Load a :class:`~bpfkit.spec.CollectionSpec` into the kernel, the way libbpf 1.7 does.

Order of work (each step needs the previous one): sanitize and load the object's BTF,
resolve ``.kconfig`` values, create maps (inner/referenced maps first, pinned maps
reused), write global data and freeze ``.rodata``, then per program: CO-RE relocation,
symbolic references -> fds/ids/addresses, load with func/line info; finally fill
``prog_array`` slots.  Everything created is owned by the returned :class:`Collection`,
and on any failure what was created so far is closed again.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import asm
from . import syscall as sc
from ._consts import MapType
from .btf import Spec
from .btf import types as bt
from .errors import (
    BpfkitError,
    KernelError,
    LoadError,
    NotFound,
    VerifierError,
)
from .externs import (
    has_bpf_cookie,
    has_syscall_wrapper,
    kallsyms_lookup,
    kconfig_value,
    kernel_config,
    kernel_version,
)
from .maps import Map
from .program import Program
from .spec import (
    KCONFIG_MAP,
    PIN_BY_NAME,
    CollectionSpec,
    ExternSpec,
    MapSpec,
    ProgramSpec,
    _fix_calls,
    _strip,
    decode_value,
    encode_value,
)

__all__ = ["load", "load_spec", "Collection", "Variable", "DEFAULT_PIN_ROOT"]

DEFAULT_PIN_ROOT = "/sys/fs/bpf"
CORE_POISON = 0xBAD2310
KFUNC_POISON_BASE = 2002000000


# ----------------------------------------------------------------------------- variables

class Variable:
    """A global variable read and written through its map's mmap."""

    def __init__(self, name: str, map_: Map, offset: int, size: int, type_id: int,
                 btf: Spec | None, readonly: bool) -> None:
        self.name = name
        self.map = map_
        self.offset = offset
        self.size = size
        self.type_id = type_id
        self.btf = btf
        self.readonly = readonly

    @property
    def raw(self) -> bytes:
        mm = self.map.mmap()
        return bytes(mm[self.offset:self.offset + self.size])

    @raw.setter
    def raw(self, data: bytes) -> None:
        if self.readonly:
            raise LoadError(f"variable {self.name!r} lives in frozen {self.map.name!r}: it is "
                            "read-only after load (set constants before load)")
        if len(data) != self.size:
            raise LoadError(f"variable {self.name!r} is {self.size} bytes, got {len(data)}")
        mm = self.map.mmap()
        mm[self.offset:self.offset + self.size] = data

    @property
    def value(self) -> Any:
        return self._decode(self.raw)

    @value.setter
    def value(self, v: Any) -> None:
        self.raw = encode_value(self.btf, self.type_id, self.size, v, f"variable {self.name!r}")

    def _decode(self, raw: bytes) -> Any:
        """BTF-typed decoding; the single place a fuller codec will plug in."""
        return decode_value(self.btf, self.type_id, raw)

    def __repr__(self) -> str:
        return f"<Variable {self.name} in {self.map.name} @{self.offset}>"


# ----------------------------------------------------------------------------- collection

class Collection:
    """Everything one object created in the kernel; closing it closes them all."""

    def __init__(self, spec: CollectionSpec) -> None:
        self.spec = spec
        self.programs: dict[str, Program] = {}
        self.maps: dict[str, Map] = {}
        self.variables: dict[str, Variable] = {}
        self.btf_fd = -1

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Program | Map:
        if name in self.programs:
            return self.programs[name]
        return self.maps[name]

    def close(self) -> None:
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd >= 0:
            sc.close_fd(self.btf_fd)
            self.btf_fd = -1

    def attach_all(self) -> list[Any]:
        """Attach every program whose section names its hook (needs ``Program.attach``)."""
        links = []
        for p in self.programs.values():
            attach = getattr(p, "attach", None)
            if attach is None:
                raise LoadError("program attachment is not available (bpfkit.attach missing)")
            from .attach.auto import auto_attachable
            if not auto_attachable(p):
                continue
            links.append(attach())
        return links

    def __repr__(self) -> str:
        return (f"<Collection {self.spec.name}: programs={list(self.programs)} "
                f"maps={list(self.maps)}>")


# ----------------------------------------------------------------------------- entry points

def load(path_or_spec: str | os.PathLike[str] | bytes | CollectionSpec, *,
         constants: Mapping[str, Any] | None = None, pin_root: str | None = None,
         btf: Spec | str | os.PathLike[str] | None = None,
         autoload: Mapping[str, bool] | Iterable[str] | None = None) -> Collection:
    """Parse (if needed) and load a BPF object; returns a :class:`Collection`.

    ``constants`` sets ``const volatile`` globals, ``pin_root`` is where
    ``LIBBPF_PIN_BY_NAME`` maps live (default /sys/fs/bpf), ``btf`` a target BTF for CO-RE
    (btfhub style; default the running kernel's), ``autoload`` either a {name: bool} map or
    the names of the only programs to load.
    """
    if isinstance(path_or_spec, CollectionSpec):
        spec = path_or_spec
    elif isinstance(path_or_spec, (bytes, bytearray, memoryview)):
        spec = CollectionSpec.from_bytes(path_or_spec)
    else:
        spec = CollectionSpec.from_file(path_or_spec)
    return load_spec(spec, constants=constants, pin_root=pin_root, btf=btf, autoload=autoload)


def load_spec(spec: CollectionSpec, *, constants: Mapping[str, Any] | None = None,
              pin_root: str | None = None, btf: Spec | str | os.PathLike[str] | None = None,
              autoload: Mapping[str, bool] | Iterable[str] | None = None) -> Collection:
    """Load ``spec`` (which is left untouched and can be loaded again)."""
    spec = spec.copy()
    if constants:
        spec.set_constants(dict(constants))
    if autoload is not None:
        if isinstance(autoload, Mapping):
            for n, v in autoload.items():
                _prog(spec, n).autoload = bool(v)
        else:
            wanted = set(autoload)
            for n in wanted:
                _prog(spec, n)
            for n, p in spec.programs.items():
                p.autoload = n in wanted
    target: Spec | None
    if btf is None or isinstance(btf, Spec):
        target = btf
    else:
        target = Spec.load_file(btf)
    coll = Collection(spec)
    try:
        _Loader(spec, coll, pin_root or DEFAULT_PIN_ROOT, target).run()
    except BaseException:
        coll.close()
        raise
    return coll


def _prog(spec: CollectionSpec, name: str) -> ProgramSpec:
    try:
        return spec.programs[name]
    except KeyError:
        raise LoadError(f"no program {name!r} (have: {', '.join(spec.programs)})") from None


# ----------------------------------------------------------------------------- the loader

class _Loader:
    def __init__(self, spec: CollectionSpec, coll: Collection, pin_root: str,
                 target_btf: Spec | None) -> None:
        self.spec = spec
        self.coll = coll
        self.pin_root = pin_root
        self._target_btf = target_btf
        self._kernel_btf: Spec | None = None
        self.btf_fd = 0
        self.reused: set[str] = set()
        self.cand_cache: dict[int, list[int]] = {}

    # -- BTF
    def kernel_btf(self) -> Spec:
        if self._kernel_btf is None:
            try:
                self._kernel_btf = Spec.kernel()
            except BpfkitError as e:
                raise LoadError(f"kernel BTF (/sys/kernel/btf/vmlinux) is needed: {e}") from e
        return self._kernel_btf

    def target_btf(self) -> Spec:
        return self._target_btf if self._target_btf is not None else self.kernel_btf()

    def run(self) -> None:
        self.load_btf()
        self.fill_kconfig()
        self.create_maps()
        self.load_programs()
        self.fill_prog_arrays()
        self.make_variables()

    def sanitized_btf(self) -> bytes:
        assert self.spec.btf is not None
        b = self.spec.btf.copy()
        int_id = 0
        for t in b:
            if isinstance(t, bt.Int) and t.size == 4 and t.name == "int":
                int_id = t.id
                break
        if not int_id:
            int_id = b.add(bt.Int(4, bt.BTF_INT_SIGNED, name="int"))
        for t in list(b):
            if isinstance(t, bt.Func) and t.linkage == bt.BTF_FUNC_GLOBAL \
                    and t.name in self.spec._static_funcs:
                t.linkage = bt.BTF_FUNC_STATIC
            if isinstance(t, bt.Func) and t.linkage == bt.BTF_FUNC_EXTERN:
                proto = b.type(t.type)
                if isinstance(proto, bt.FuncProto):
                    for i, prm in enumerate(proto.params):
                        if not prm.name and prm.type:
                            prm.name = f"arg{i}"
            if not isinstance(t, bt.Datasec):
                continue
            if t.name == ".kconfig":
                kmap = self.spec.maps.get(KCONFIG_MAP)
                for vs in t.vars:
                    var = b.type(vs.type)
                    ext = self.spec.externs.get(var.name)
                    if isinstance(var, bt.Var) and ext is not None:
                        var.linkage = bt.BTF_VAR_GLOBAL_ALLOCATED
                        vs.offset, vs.size = ext.offset, ext.size
                t.size = kmap.value_size if kmap is not None else 0
            elif t.name == ".ksyms":
                for i, vs in enumerate(t.vars):
                    var = b.type(vs.type)
                    if isinstance(var, bt.Var):
                        var.type, var.linkage = int_id, bt.BTF_VAR_GLOBAL_ALLOCATED
                    else:
                        vs.type = b.add(bt.Var(int_id, bt.BTF_VAR_GLOBAL_ALLOCATED,
                                               name=var.name))
                    vs.offset, vs.size = 4 * i, 4
                t.size = 4 * len(t.vars)
            else:
                offs = self.spec._sym_offsets.get(t.name, {})
                t.size = self.spec._sec_sizes.get(t.name, t.size)
                for vs in t.vars:
                    var = b.type(vs.type)
                    if var.name in offs:
                        vs.offset = offs[var.name][0]
                t.vars.sort(key=lambda v: v.offset)
        return b.to_bytes()

    def load_btf(self) -> None:
        if self.spec.btf is None:
            return
        raw = self.sanitized_btf()
        try:
            fd, _ = sc.btf_load(raw, log_level=1, log_size=1 << 20)
        except KernelError:
            # like libbpf: BTF is optional for most programs; load without it
            self.btf_fd = 0
            return
        self.btf_fd = fd
        self.coll.btf_fd = fd

    # -- kconfig
    def fill_kconfig(self) -> None:
        kmap = self.spec.maps.get(KCONFIG_MAP)
        if kmap is None or kmap.data is None:
            return
        cfg: dict[str, str] | None = None
        for ext in self.spec.externs.values():
            if ext.kind != "kconfig":
                continue
            kind = self.kconfig_kind(ext)
            raw: str | None
            if ext.name == "LINUX_KERNEL_VERSION":
                raw = str(kernel_version())
            elif ext.name == "LINUX_HAS_BPF_COOKIE":
                raw = "y" if has_bpf_cookie() else "n"
            elif ext.name == "LINUX_HAS_SYSCALL_WRAPPER":
                raw = "y" if has_syscall_wrapper() else "n"
            elif ext.name.startswith("CONFIG_"):
                if cfg is None:
                    cfg = kernel_config()
                raw = cfg.get(ext.name)
            else:
                raw = None
            if raw is None:
                if ext.weak:
                    continue  # stays 0
                raise LoadError(f"extern {ext.name!r} (__kconfig): no value in this kernel's "
                                "config (/proc/config.gz, /boot/config-*); declare it __weak "
                                "to default to 0")
            try:
                b = kconfig_value(raw, ext.size, kind)
            except BpfkitError as e:
                raise LoadError(f"extern {ext.name!r} (__kconfig): {e}") from None
            kmap.data[ext.offset:ext.offset + ext.size] = b

    def kconfig_kind(self, ext: ExternSpec) -> str:
        btf = self.spec.btf
        if btf is None:
            return "int"
        t = btf.type(_strip(btf, ext.type_id))
        if isinstance(t, bt.Int):
            if t.is_bool:
                return "bool"
            if t.size == 1 and (t.is_char or "char" in t.name):
                return "char"
            return "int"
        if isinstance(t, bt.EnumBase):
            return "tristate"
        if isinstance(t, bt.Array):
            return "str"
        raise LoadError(f"extern {ext.name!r} (__kconfig): unsupported type {btf.type_name(t.id)}")

    # -- maps
    def create_maps(self) -> None:
        done: set[str] = set()
        visiting: set[str] = set()

        def create(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise LoadError(f"map {name!r}: circular static initialisation")
            visiting.add(name)
            m = self.spec.maps[name]
            if m.inner is not None:
                for dep in m.contents.values():
                    if dep not in self.spec.maps:
                        raise LoadError(f"map {name!r} refers to unknown map {dep!r}")
                    create(dep)
            mp = self.create_map(m)
            self.type_map(mp, m)
            self.coll.maps[name] = mp
            done.add(name)

        for name in self.spec.maps:
            create(name)
        for name, m in self.spec.maps.items():
            mp = self.coll.maps[name]
            if name in self.reused:
                continue
            if m.data is not None:
                mp.update(0, bytes(m.data))
                if m.freeze:
                    mp.freeze()
            if m.inner is not None:
                for slot, dep in m.contents.items():
                    mp.update(slot, self.coll.maps[dep].fd.to_bytes(4, "little"))

    def create_map(self, m: MapSpec) -> Map:
        if m.type == 0:
            raise LoadError(f"map {m.name!r} has no type")
        if m.pinning == PIN_BY_NAME:
            path = os.path.join(self.pin_root, m.name)
            if os.path.exists(path):
                old = Map.from_pin(path)
                diff = self.pin_diff(m, old)
                if diff:
                    old.close()
                    raise LoadError(f"pinned map {path} is incompatible with map {m.name!r}: "
                                    f"{diff}; unpin it or rename the map")
                self.reused.add(m.name)
                old.name = m.name
                return old
        inner: Map | None = None
        if m.inner is not None:
            inner = self.raw_create(m.inner, m.name + ".inner", use_btf=False)
        try:
            mp = self.raw_create(m, m.kernel_name or m.name, inner=inner)
        finally:
            if inner is not None:
                inner.close()
        mp.name = m.name
        if m.pinning == PIN_BY_NAME:
            path = os.path.join(self.pin_root, m.name)
            try:
                mp.pin(path)
            except KernelError as e:
                mp.close()
                raise LoadError(f"cannot pin map {m.name!r} at {path}: {e} (is bpffs mounted "
                                f"at {self.pin_root}? mount -t bpf bpf /sys/fs/bpf)") from e
        return mp

    def type_map(self, mp: Map, m: MapSpec) -> None:
        """Give a map BTF-driven key/value codecs so it returns Python values, not bytes."""
        btf = self.spec.btf
        mp.btf = btf  # type: ignore[attr-defined]
        mp.spec = m  # type: ignore[attr-defined]
        if btf is None or m.is_data:
            return
        try:
            from .btf.codec import BTFCodec
        except ImportError:
            return
        for attr, tid, size in (("key_codec", m.key_type_id, m.key_size),
                                ("value_codec", m.value_type_id, m.value_size)):
            if not tid:
                continue
            try:
                codec = BTFCodec(btf, tid)
            except BpfkitError:
                continue
            if codec.size == size:
                setattr(mp, attr, codec)

    def raw_create(self, m: MapSpec, kname: str, inner: Map | None = None,
                   use_btf: bool = True) -> Map:
        kname = "".join(c if c.isalnum() or c in "._" else "_" for c in kname)[:15]
        kw: dict[str, Any] = dict(flags=m.flags, name=kname, inner_map=inner,
                                  numa_node=m.numa_node, map_extra=m.map_extra)
        btf_ok = (use_btf and self.btf_fd > 0 and (m.key_type_id or m.value_type_id)
                  and m.inner is None and m.type not in (MapType.PROG_ARRAY,
                                                         MapType.PERF_EVENT_ARRAY))
        if btf_ok:
            try:
                return Map.create(m.type, m.key_size, m.value_size, m.max_entries,
                                  btf_fd=self.btf_fd, btf_key_type_id=m.key_type_id,
                                  btf_value_type_id=m.value_type_id, **kw)
            except KernelError:
                pass  # libbpf retries without BTF too
        try:
            return Map.create(m.type, m.key_size, m.value_size, m.max_entries, **kw)
        except KernelError as e:
            raise type(e)(e.command, e.errno, obj=f"map {m.name!r}", hint=e.hint,
                          detail=f"type {_map_type_name(m.type)}, key {m.key_size}, value "
                                 f"{m.value_size}, max_entries {m.max_entries}, flags "
                                 f"{m.flags:#x}") from None

    @staticmethod
    def pin_diff(m: MapSpec, old: Map) -> str:
        info = old.info()
        diffs = []
        for what, want, have in (("type", int(m.type), int(info.type)),
                                 ("key_size", m.key_size, info.key_size),
                                 ("value_size", m.value_size, info.value_size),
                                 ("max_entries", m.max_entries, info.max_entries),
                                 ("flags", m.flags, info.flags)):
            if want != have:
                diffs.append(f"{what} {have} pinned vs {want} wanted")
        return ", ".join(diffs)

    # -- programs
    def load_programs(self) -> None:
        for name, p in self.spec.programs.items():
            if not p.autoload:
                continue
            prog = self.load_program(p)
            prog.collection = self.coll  # usdt maps, struct_ops
            self.coll.programs[name] = prog

    def load_program(self, p: ProgramSpec) -> Program:
        insns = [asm.Instruction(i.opcode, i.dst, i.src, i.off, i.imm, ref=i.ref,
                                 ref_kind=i.ref_kind, source=i.source, meta=dict(i.meta))
                 for i in p.instructions]
        if p.core_relos:
            if self.spec.btf is None:
                raise LoadError(f"program {p.name!r} has CO-RE relocations but no BTF")
            from . import core
            core_results = core.relocate(insns, p.core_relos, self.spec.btf, self.target_btf(),
                                         p.name, cand_cache=self.cand_cache)
        else:
            core_results = []
        _fix_calls(insns, p.name)
        kfunc_idx = {n: i for i, n in enumerate(self.spec.externs)}
        for ins in insns:
            self.resolve(p, ins, kfunc_idx)
        kw: dict[str, Any] = {}
        if p.info.attach_btf and p.attach_target:
            kw["attach_btf_id"] = self.attach_btf_id(p)
        elif p.info.attach_btf:
            raise LoadError(f"program {p.name!r} in {p.section!r} needs an attach target "
                            f"('{p.info.definition.base}/<target>')")
        if self.btf_fd > 0 and p.func_info:
            kw.update(btf_fd=self.btf_fd,
                      func_info=b"".join((f.insn_off // 8).to_bytes(4, "little")
                                         + f.type_id.to_bytes(4, "little")
                                         for f in p.func_info),
                      func_info_rec_size=8)
            if p.line_info:
                kw.update(line_info=b"".join(
                    (li.insn_off // 8).to_bytes(4, "little")
                    + li.file_name_off.to_bytes(4, "little")
                    + li.line_off.to_bytes(4, "little")
                    + ((li.line << 10) | (li.column & 0x3FF)).to_bytes(4, "little")
                    for li in p.line_info), line_info_rec_size=16)
        elif self.btf_fd > 0:
            kw["btf_fd"] = self.btf_fd
        try:
            prog = Program.load(p.prog_type, insns, license=p.license, name=_kname(p.name),
                                expected_attach_type=p.expected_attach_type, flags=p.flags,
                                kern_version=p.kern_version, **kw)
        except VerifierError as e:
            raise self.explain(p, insns, e, core_results) from None
        prog.name = p.name
        prog.section = p.section
        prog.spec = p
        return prog

    def resolve(self, p: ProgramSpec, ins: asm.Instruction, kfunc_idx: dict[str, int]) -> None:
        kind = ins.ref_kind
        if kind is None or kind in ("call", "func"):
            return
        ref = ins.ref or ""
        where = f"program {p.name!r}"
        if kind == "map":
            mp = self.coll.maps.get(ref)
            if mp is None:
                raise LoadError(f"{where} uses map {ref!r}, which was not created")
            ins.src, ins.imm = asm.BPF_PSEUDO_MAP_FD, mp.fd
        elif kind == "map_value":
            mp = self.coll.maps.get(ref)
            if mp is None:
                raise LoadError(f"{where} uses global data {ref!r}, which was not created")
            off = int(ins.meta.get("offset", 0))
            ins.src, ins.imm = asm.BPF_PSEUDO_MAP_VALUE, (off << 32) | mp.fd
        elif kind == "ksym":
            ext = self.spec.externs.get(ref)
            if ext is None:
                raise LoadError(f"{where}: unknown ksym {ref!r}")
            if ext.kind == "kfunc" or ext.typed:
                kind_want = bt.Func if ext.kind == "kfunc" else bt.Var
                tid = self.kernel_id(ref, kind_want)
                if tid is not None and ext.kind != "kfunc" and kallsyms_lookup(ref) is None:
                    if not ext.weak:
                        raise LoadError(
                            f"{where}: kernel variable {ref!r} is in kernel BTF but has no "
                            "address in /proc/kallsyms (this kernel lacks CONFIG_KALLSYMS_ALL, "
                            "so typed __ksym variables cannot be resolved)")
                    tid = None
                if tid is None:
                    if not ext.weak:
                        raise LoadError(f"{where}: kernel symbol {ref!r} is not in kernel BTF "
                                        "(declare it __weak to make it optional)")
                    ins.src, ins.imm = 0, 0
                else:
                    ins.src, ins.imm = asm.BPF_PSEUDO_BTF_ID, tid
            else:
                addr = kallsyms_lookup(ref)
                if addr is None:
                    if not ext.weak:
                        raise LoadError(f"{where}: kernel symbol {ref!r} is not in "
                                        "/proc/kallsyms (declare it __weak to make it optional)")
                    addr = 0
                ins.src, ins.imm = 0, addr
        elif kind == "kfunc":
            ext = self.spec.externs.get(ref)
            tid = self.kernel_id(ref, bt.Func)
            if tid is None:
                if ext is not None and ext.weak:
                    ins.src, ins.off, ins.imm = 0, 0, KFUNC_POISON_BASE + kfunc_idx.get(ref, 0)
                    ins.meta["poisoned_kfunc"] = ref
                    return
                raise LoadError(f"{where} calls kernel function {ref!r}, which this kernel does "
                                "not have (not in kernel BTF); guard it with bpf_ksym_exists() "
                                "and declare it __weak")
            ins.src, ins.off, ins.imm = asm.BPF_PSEUDO_KFUNC_CALL, 0, tid
        else:
            raise LoadError(f"{where}: unknown reference kind {kind!r}")

    def kernel_id(self, name: str, kind: type[bt.BTFType]) -> int | None:
        ids = self.kernel_btf().ids_by_name(name, kind)
        return ids[0] if ids else None

    def attach_btf_id(self, p: ProgramSpec) -> int:
        base = p.info.definition.base.split(".")[0]
        target = p.attach_target
        kind: type[bt.BTFType]
        if base == "tp_btf":
            name, kind = "btf_trace_" + target, bt.Typedef
        elif base == "iter":
            name, kind = "bpf_iter_" + target, bt.Func
        elif base in ("lsm", "lsm_cgroup"):
            name, kind = "bpf_lsm_" + target, bt.Func
        elif base == "freplace":
            raise LoadError(f"program {p.name!r}: freplace needs a target program, which "
                            "bpfkit's loader does not support yet")
        else:
            name, kind = target, bt.Func
        tid = self.kernel_id(name, kind)
        if tid is None:
            raise NotFound("BTF lookup", errno.ENOENT, obj=f"program {p.name!r}",
                           hint="", detail=f"attach target {target!r} ({kind.__name__} "
                                           f"{name!r}) is not in the kernel's BTF")
        return tid

    def explain(self, p: ProgramSpec, insns: list[asm.Instruction], e: VerifierError,
                core_results: list[Any]) -> VerifierError:
        """Name the source line, and turn poison markers into words."""
        idx = _failing_insn(e.log)
        source = (p.source_of(idx) if idx is not None else None) or e.source
        cause = e.cause
        slot_of: dict[int, asm.Instruction] = {}
        s = 0
        for ins in insns:
            slot_of[s] = ins
            s += ins.size
        poison_text = ""
        if core_results:
            from . import core
            pslot = core.poison_slot_from_log(e.log)
            if pslot is not None:
                poison_text = core.explain_poison(pslot, core_results)
        if poison_text:
            cause = poison_text
        elif str(CORE_POISON) in e.log or hex(CORE_POISON) in e.log:
            relo = None
            if idx is not None:
                relo = next((r for r in p.core_relos if r.insn_off // 8 == idx), None)
            if relo is None:
                poisoned = [r for r in p.core_relos
                            if (pi := slot_of.get(r.insn_off // 8)) is not None
                            and (pi.imm == CORE_POISON or pi.meta.get("core_poison"))]
                relo = poisoned[0] if poisoned else None
            what = _core_desc(self.spec.btf, relo) if relo is not None else "a field"
            cause = f"CO-RE relocation failed for {what} in {p.name}"
        m = re.search(r"unknown#(\d+)", e.log)
        if m and int(m.group(1)) >= KFUNC_POISON_BASE:
            n = int(m.group(1)) - KFUNC_POISON_BASE
            names = list(self.spec.externs)
            fname = names[n] if n < len(names) else "?"
            cause = (f"weak kernel function {fname!r} is missing in this kernel but is called "
                     "on a reachable path: guard the call with bpf_ksym_exists()")
        km = re.search(r"calling kernel function (\S+) is not allowed", e.log)
        if km:
            cause = (f"kernel function {km.group(1)} may not be called from this program "
                     f"type ({p.info.prog_type.name}) by this kernel")
        return VerifierError(p.name, e.errno, e.log, cause=cause, source=source)

    def fill_prog_arrays(self) -> None:
        for name, m in self.spec.maps.items():
            if m.type != MapType.PROG_ARRAY or not m.contents or name in self.reused:
                continue
            mp = self.coll.maps[name]
            for slot, pname in m.contents.items():
                prog = self.coll.programs.get(pname)
                if prog is None:
                    continue  # not autoloaded
                mp.update(slot, prog.fd.to_bytes(4, "little"))

    def make_variables(self) -> None:
        for name, v in self.spec.variables.items():
            mp = self.coll.maps.get(v.section)
            if mp is None:
                continue
            m = self.spec.maps[v.section]
            self.coll.variables[name] = Variable(name, mp, v.offset, v.size, v.type_id,
                                                 self.spec.btf, readonly=m.freeze)


def _kname(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name)[:15]


def _map_type_name(t: int) -> str:
    try:
        return MapType(t).name
    except ValueError:
        return str(t)


_INSN_LINE = re.compile(r"^(\d+): \([0-9a-f]{2}\)")


def _failing_insn(log: str) -> int | None:
    """Index of the last instruction the verifier printed before giving up."""
    last = None
    for ln in log.splitlines():
        mt = _INSN_LINE.match(ln.strip())
        if mt:
            last = int(mt.group(1))
    return last


def _core_desc(btf: Spec | None, relo: Any) -> str:
    """``struct_name.field.path`` of a CO-RE record, for error messages."""
    if btf is None:
        return f"type {relo.type_id}"
    try:
        tid = relo.type_id
        t = btf.type(_strip(btf, tid))
        parts = [t.name or btf.type_name(tid)]
        acc = [int(x) for x in relo.access_str.split(":") if x != ""]
        cur = t
        for a in acc[1:]:
            cur = btf.type(_strip(btf, cur.id))
            if isinstance(cur, bt.Composite) and a < len(cur.members):
                mem = cur.members[a]
                parts.append(mem.name or f"<anon{a}>")
                cur = btf.type(_strip(btf, mem.type))
            elif isinstance(cur, bt.Array):
                parts[-1] += f"[{a}]"
                cur = btf.type(_strip(btf, cur.type))
            else:
                break
        if isinstance(t, bt.EnumBase) and acc:
            return f"{parts[0]}::{t.values[acc[0]].name}" if acc[0] < len(t.values) else parts[0]
        return ".".join(parts)
    except (BpfkitError, IndexError, ValueError, AttributeError):
        return f"type {relo.type_id} access {relo.access_str}"

