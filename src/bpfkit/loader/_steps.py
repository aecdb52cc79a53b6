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
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .. import asm, verifier_log
from .. import syscall as sc
from .._consts import BPF_F_RDONLY_PROG, AttachType, MapType, ProgramType
from ..btf import Spec
from ..btf import types as bt
from ..btf.sanitize import BTFFeatures, sanitize_btf
from ..core import POISONED_CALL_ID
from ..errors import (
    BpfkitError,
    KernelError,
    LoadError,
    NotFound,
    VerifierError,
)
from ..features import has_bpf_cookie, has_kprobes, has_syscall_wrapper
from ..features.btf import probe_btf_features
from ..host.kallsyms import kallsyms_lookup
from ..host.kconfig import kernel_config
from ..host.version import kernel_version_code
from ..maps import Map, possible_cpus
from ..program import Program
from ..sections import SecFlag
from ..spec import (
    KCONFIG_MAP,
    PIN_BY_NAME,
    CollectionSpec,
    ExternSpec,
    MapSpec,
    ProgramSpec,
    _fix_calls,
    _strip,
)
from ._diagnose import _GATED_TYPES, _core_desc, _prog_fd, _refused
from ._kconfig import kconfig_value
from ._struct_ops import _is_func_ptr, struct_ops_value
from .collection import Collection, Variable

__all__ = ["load", "load_spec", "Collection", "Variable", "DEFAULT_PIN_ROOT", "BTFFeatures",
           "probe_btf_features", "sanitize_btf", "prog_target_attrs", "struct_ops_value"]

DEFAULT_PIN_ROOT = "/sys/fs/bpf"
CORE_POISON = POISONED_CALL_ID  # one poison id: core.py owns it
KFUNC_POISON_BASE = 2002000000


# ----------------------------------------------------------------------------- variables


# ----------------------------------------------------------------------------- collection


# ----------------------------------------------------------------------------- entry points

def load(path_or_spec: str | os.PathLike[str] | bytes | CollectionSpec, *,
         constants: Mapping[str, Any] | None = None, pin_root: str | None = None,
         btf: Spec | str | os.PathLike[str] | None = None,
         autoload: Mapping[str, bool] | Iterable[str] | None = None,
         attach_targets: Mapping[str, Any] | None = None,
         count_ringbuf_losses: bool = False) -> Collection:
    """Parse (if needed) and load a BPF object; returns a :class:`Collection`.

    ``constants`` sets ``const volatile`` globals, ``pin_root`` is where
    ``LIBBPF_PIN_BY_NAME`` maps live (default /sys/fs/bpf), ``btf`` a target BTF for CO-RE
    (btfhub style; default the running kernel's), ``autoload`` either a {name: bool} map or
    the names of the only programs to load, ``attach_targets`` {program name: loaded
    ``Program`` (or fd)} for fentry/fexit/freplace programs on a BPF program's function.
    """
    if isinstance(path_or_spec, CollectionSpec):
        spec = path_or_spec
    elif isinstance(path_or_spec, (bytes, bytearray, memoryview)):
        spec = CollectionSpec.from_bytes(path_or_spec)
    else:
        spec = CollectionSpec.from_file(path_or_spec)
    return load_spec(spec, constants=constants, pin_root=pin_root, btf=btf, autoload=autoload,
                     attach_targets=attach_targets, count_ringbuf_losses=count_ringbuf_losses)


def load_spec(spec: CollectionSpec, *, constants: Mapping[str, Any] | None = None,
              pin_root: str | None = None, btf: Spec | str | os.PathLike[str] | None = None,
              autoload: Mapping[str, bool] | Iterable[str] | None = None,
              attach_targets: Mapping[str, Any] | None = None,
              count_ringbuf_losses: bool = False) -> Collection:
    """Load ``spec`` (which is left untouched and can be loaded again).

    ``count_ringbuf_losses`` instruments failed ``bpf_ringbuf_reserve``/``output`` calls
    (:mod:`bpfkit.losses`; read with ``bpfkit.losses.ringbuf_lost(coll)``).  Off by
    default, so the programs' instructions are exactly the object's, as with libbpf.
    """
    # the instrumentation rewrites instructions: only then a full copy is needed
    spec = spec.copy() if count_ringbuf_losses else spec.load_copy()
    if count_ringbuf_losses:
        from ..losses import count_ringbuf_losses as instrument
        instrument(spec)
    if constants:
        spec.set_constants(dict(constants))
    for n, tgt in (attach_targets or {}).items():
        _prog(spec, n).attach_prog = tgt
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
        #: struct_ops program -> (kernel type id, member index): its attach_btf_id and
        #: expected_attach_type
        self.st_ops_progs: dict[str, tuple[int, int]] = {}
        #: struct_ops map -> (kernel type id, wrapper type id)
        self.st_ops_types: dict[str, tuple[int, int]] = {}

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
        self.check_ksyms()
        self.prepare_struct_ops()
        self.create_maps()
        self.load_programs()
        self.fill_prog_arrays()
        self.init_struct_ops()
        self.make_variables()

    def sanitized_btf(self) -> bytes:
        """The object's BTF as the kernel wants it (libbpf's ``bpf_object_fixup_btf`` and
        ``sanitize_btf``): DATASEC sizes and offsets, static/extern FUNC linkage, the
        ``.kconfig``/``.ksyms`` sections.  Copy on write: the types that change are
        replaced in a copy that shares every other type with the spec's BTF."""
        assert self.spec.btf is not None
        b = self.spec.btf.shallow_copy()
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
                b[t.id] = replace(t, linkage=bt.BTF_FUNC_STATIC)
            elif isinstance(t, bt.Func) and t.linkage == bt.BTF_FUNC_EXTERN:
                # the kernel's BTF loader takes static/global FUNCs only (as libbpf)
                b[t.id] = replace(t, linkage=bt.BTF_FUNC_GLOBAL)
                proto = b.type(t.type)
                if isinstance(proto, bt.FuncProto) and any(
                        not prm.name and prm.type for prm in proto.params):
                    b[proto.id] = replace(proto, params=[
                        replace(prm, name=prm.name or (f"arg{i}" if prm.type else ""))
                        for i, prm in enumerate(proto.params)])
            if not isinstance(t, bt.Datasec):
                continue
            ds = replace(t, vars=[replace(vs) for vs in t.vars])
            if t.name == ".kconfig":
                kmap = self.spec.maps.get(KCONFIG_MAP)
                for vs in ds.vars:
                    var = b.type(vs.type)
                    ext = self.spec.externs.get(var.name)
                    if isinstance(var, bt.Var) and ext is not None:
                        b[var.id] = replace(var, linkage=bt.BTF_VAR_GLOBAL_ALLOCATED)
                        vs.offset, vs.size = ext.offset, ext.size
                ds.vars.sort(key=lambda v: v.offset)  # the kernel wants them in order
                ds.size = kmap.value_size if kmap is not None else 0
            elif t.name == ".ksyms":
                for i, vs in enumerate(ds.vars):
                    var = b.type(vs.type)
                    if isinstance(var, bt.Var):
                        b[var.id] = replace(var, type=int_id,
                                            linkage=bt.BTF_VAR_GLOBAL_ALLOCATED)
                    else:
                        vs.type = b.add(bt.Var(int_id, bt.BTF_VAR_GLOBAL_ALLOCATED,
                                               name=var.name))
                    vs.offset, vs.size = 4 * i, 4
                ds.size = 4 * len(ds.vars)
            else:
                offs = self.spec._sym_offsets.get(t.name, {})
                ds.size = self.spec._sec_sizes.get(t.name, t.size)
                for vs in ds.vars:
                    var = b.type(vs.type)
                    if var.name in offs:
                        vs.offset = offs[var.name][0]
                ds.vars.sort(key=lambda v: v.offset)
            b[t.id] = ds
        return sanitize_btf(b, probe_btf_features()).to_bytes()

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
                raw = str(kernel_version_code())
            elif ext.name == "LINUX_HAS_BPF_COOKIE":
                raw = "y" if has_bpf_cookie().supported else "n"
            elif ext.name == "LINUX_HAS_SYSCALL_WRAPPER":
                # libbpf answers by creating a kprobe on __<arch>_sys_bpf: without
                # kprobes that fails, so BPF_KSYSCALL code takes the no-wrapper branch
                raw = ("y" if has_syscall_wrapper().supported and has_kprobes().supported
                       else "n")
            elif ext.name.startswith("CONFIG_"):
                if cfg is None:
                    cfg = kernel_config()
                raw = cfg.get(ext.name)
                if raw == "n":  # "# CONFIG_X is not set": unresolved, as libbpf has it
                    raw = None
            elif ext.name.startswith("LINUX_") and ext.weak:
                continue  # an unknown virtual LINUX_* value: 0 when __weak, as libbpf
            else:
                raise NotFound("extern resolution", errno.EINVAL, obj=f"extern {ext.name!r}",
                               detail="unknown __kconfig extern: only CONFIG_* values and "
                                      "LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE and "
                                      "LINUX_HAS_SYSCALL_WRAPPER exist",
                               hint="other LINUX_* names may be declared __weak (they are 0)")
            if raw is None:
                if ext.weak:
                    continue  # stays 0
                raise NotFound("extern resolution", errno.ESRCH, obj=f"extern {ext.name!r}",
                               detail="this __kconfig value is not in the kernel's config "
                                      "(/proc/config.gz, /boot/config-*)",
                               hint="declare it __weak to default to 0")
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

    # -- ksyms
    def check_ksyms(self) -> None:
        """Every ``__ksym`` must exist before anything is created, as libbpf's
        ``bpf_object__resolve_externs``: typed ones and kfuncs in kernel BTF (else EINVAL),
        then untyped ones in /proc/kallsyms (else ESRCH); ``__weak`` ones may be missing."""
        untyped = []
        for ext in self.spec.externs.values():
            if ext.weak or ext.kind not in ("ksym", "kfunc"):
                continue
            if ext.kind == "kfunc" or ext.typed:
                kind = bt.Func if ext.kind == "kfunc" else bt.Var
                if self.kernel_id(ext.name, kind) is None:
                    what = "kernel function" if ext.kind == "kfunc" else "kernel variable"
                    raise NotFound("extern resolution", errno.EINVAL,
                                   obj=f"extern {ext.name!r} (__ksym)",
                                   detail=f"no {what} {ext.name!r} in the kernel's BTF",
                                   hint="declare it __weak and guard its use with "
                                        "bpf_ksym_exists()")
            else:
                untyped.append(ext.name)
        missing = [n for n in untyped if kallsyms_lookup(n) is None]
        if missing:
            raise NotFound("extern resolution", errno.ESRCH,
                           obj=f"extern {missing[0]!r} (__ksym)",
                           detail=f"{', '.join(map(repr, missing))} not in /proc/kallsyms",
                           hint="declare it __weak and guard its use with bpf_ksym_exists()")

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

        for m in self.spec.maps.values():
            map_defaults(m)
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
        if m.struct_ops is not None:
            return self.create_struct_ops_map(m)
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
        mp.object_spec = self.spec  # type: ignore[attr-defined]  # DWARF types for records
        if btf is None or m.is_data or m.struct_ops is not None:
            return
        mp.use_btf(btf, m.key_type_id, m.value_type_id)

    def raw_create(self, m: MapSpec, kname: str, inner: Map | None = None,
                   use_btf: bool = True) -> Map:
        kname = "".join(c if c.isalnum() or c in "._" else "_" for c in kname)[:15]
        kw: dict[str, Any] = dict(flags=m.flags, name=kname, inner_map=inner,
                                  numa_node=m.numa_node, map_extra=m.map_extra)
        btf_ok = (use_btf and self.btf_fd > 0 and (m.key_type_id or m.value_type_id)
                  and m.inner is None and m.type not in _NO_BTF_MAPS)
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
        have_flags = info.flags
        if m.type in (MapType.DEVMAP, MapType.DEVMAP_HASH):
            # the kernel adds BPF_F_RDONLY_PROG to these; libbpf ignores it here too
            have_flags &= ~BPF_F_RDONLY_PROG | (m.flags & BPF_F_RDONLY_PROG)
        for what, want, have in (("type", int(m.type), int(info.type)),
                                 ("key_size", m.key_size, info.key_size),
                                 ("value_size", m.value_size, info.value_size),
                                 ("max_entries", m.max_entries, info.max_entries),
                                 ("flags", m.flags, have_flags),
                                 ("map_extra", m.map_extra, info.map_extra)):
            if want != have:
                diffs.append(f"{what} {have} pinned vs {want} wanted")
        return ", ".join(diffs)

    # -- struct_ops
    def prepare_struct_ops(self) -> None:
        """Find each struct_ops map's kernel type and wrapper, and what its programs attach to.

        Must run before programs load: a struct_ops program is loaded *for* one member
        of one kernel type (attach_btf_id = type, expected_attach_type = member index).
        """
        for name, m in self.spec.maps.items():
            so = m.struct_ops
            if so is None:
                continue
            kb = self.kernel_btf()
            kid = self.kernel_id(so.type_name, bt.Struct)
            wid = self.kernel_id("bpf_struct_ops_" + so.type_name, bt.Struct)
            if kid is None or wid is None:
                raise LoadError(f"struct_ops map {name!r}: the kernel has no struct_ops type "
                                f"'struct {so.type_name}' (no 'struct bpf_struct_ops_"
                                f"{so.type_name}' in kernel BTF)")
            kt = kb.type(kid)
            assert isinstance(kt, bt.Struct)
            self.st_ops_types[name] = (kid, wid)
            kidx = {mem.name: i for i, mem in enumerate(kt.members) if mem.name}
            for member, pname in so.programs.items():
                idx = kidx.get(member)
                if idx is None:
                    raise LoadError(f"struct_ops map {name!r}: member {member!r} (program "
                                    f"{pname!r}) is not in the kernel's struct {so.type_name}")
                if not _is_func_ptr(kb, kt.members[idx].type):
                    raise LoadError(f"struct_ops map {name!r}: member {member!r} of the "
                                    f"kernel's struct {so.type_name} is not a function pointer")
                want = (kid, idx)
                have = self.st_ops_progs.setdefault(pname, want)
                if have != want:
                    raise LoadError(f"struct_ops program {pname!r} is used for different "
                                    f"members/types (member index {have[1]} and {idx}); a "
                                    "program implements exactly one member")

    def create_struct_ops_map(self, m: MapSpec) -> Map:
        if self.btf_fd <= 0:
            raise LoadError(f"struct_ops map {m.name!r} needs the object's BTF, which the "
                            "kernel did not accept")
        kid, wid = self.st_ops_types[m.name]
        wsize = self.kernel_btf().sizeof(wid)
        try:
            # the kernel wants btf_value_type_id 0 next to btf_vmlinux_value_type_id, but a
            # valid btf_fd: the object's BTF is how it links programs to members
            mp = Map.create(MapType.STRUCT_OPS, 4, wsize, 1, flags=m.flags,
                            name=_kname(m.kernel_name or m.name), btf_fd=self.btf_fd,
                            btf_vmlinux_value_type_id=wid)
        except KernelError as e:
            raise type(e)(e.command, e.errno, obj=f"struct_ops map {m.name!r}", hint=e.hint,
                          detail=f"kernel type {m.struct_ops.type_name if m.struct_ops else '?'}"
                                 f" (value {wsize} bytes)") from None
        mp.name = m.name
        return mp

    def init_struct_ops(self) -> None:
        """Lay each struct_ops value out for the kernel; ``.struct_ops.link`` maps are set now
        (the kernel validates the ops here), plain ones when attached (which registers)."""
        for name, m in self.spec.maps.items():
            so = m.struct_ops
            if so is None or name not in self.coll.maps:
                continue
            assert self.spec.btf is not None
            kid, wid = self.st_ops_types[name]
            fds: dict[str, int] = {}
            for member, pname in so.programs.items():
                prog = self.coll.programs.get(pname)
                if prog is None:
                    raise LoadError(f"struct_ops map {name!r}: program {pname!r} (member "
                                    f"{member!r}) was not loaded (autoload is off)")
                fds[member] = prog.fd
            value = struct_ops_value(so, self.spec.btf, self.kernel_btf(), kid, wid, fds,
                                     what=f"struct_ops map {name!r}")
            self.coll.struct_ops_values[name] = value
            if so.link:
                self.coll.maps[name].update(0, value)

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
            from .. import core
            core_results = core.relocate(insns, p.core_relos, self.spec.btf, self.target_btf(),
                                         p.name, cand_cache=self.cand_cache)
        else:
            core_results = []
        _fix_calls(insns, p.name)
        kfunc_idx = {n: i for i, n in enumerate(self.spec.externs)}
        for ins in insns:
            self.resolve(p, ins, kfunc_idx)
        kw: dict[str, Any] = dict(self.attach_kw(p))
        eat = kw.pop("expected_attach_type", p.expected_attach_type)
        eat = p.expected_attach_type = section_attach_type(p, eat)
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
                                expected_attach_type=eat, flags=p.flags,
                                kern_version=p.kern_version, **kw)
        except VerifierError as e:
            raise self.explain(p, insns, e, core_results) from None
        except KernelError as e:
            if e.errno == errno.EPERM and p.prog_type in _GATED_TYPES:
                raise _refused(p, eat, e) from None
            raise
        prog.name = p.name
        prog.section = p.section
        prog.spec = p
        self.bind_rodata(prog)
        prog.attach_target_prog = p.attach_prog  # type: ignore[attr-defined]
        return prog

    def bind_rodata(self, prog: Program) -> None:
        """Tie every ``.rodata*`` map to ``prog`` (BPF_PROG_BIND_MAP), as libbpf does, so the
        constants live as long as the program even when nothing else holds the map."""
        for name, m in self.spec.maps.items():
            mp = self.coll.maps.get(name)
            if mp is None or m.data is None or not m.section.startswith(".rodata"):
                continue
            try:
                sc.prog_bind_map(prog.fd, mp.fd)
            except KernelError:
                pass  # libbpf only warns: kernels before 5.10 have no PROG_BIND_MAP

    def attach_kw(self, p: ProgramSpec) -> dict[str, int]:
        """The attach attributes of BPF_PROG_LOAD for ``p`` (attach_btf_id, attach_prog_fd,
        expected_attach_type when it is not the section's)."""
        if p.prog_type == ProgramType.STRUCT_OPS:
            st = self.st_ops_progs.get(p.name)
            if st is None:
                raise LoadError(f"struct_ops program {p.name!r} is not used by any struct_ops "
                                "map, so nothing says which kernel member it implements "
                                "(set its autoload to False)")
            return {"attach_btf_id": st[0], "expected_attach_type": st[1]}
        if p.attach_prog is not None:
            return prog_target_attrs(p)
        if p.info.attach_btf and p.attach_target:
            return {"attach_btf_id": self.attach_btf_id(p)}
        if p.info.attach_btf:
            raise LoadError(f"program {p.name!r} in {p.section!r} needs an attach target "
                            f"('{p.info.definition.base}/<target>')")
        return {}

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
                        # what the kernel answers (ENOENT, "ldimm64 failed to find the
                        # address for kernel symbol"), said before it has to
                        raise NotFound(
                            "BPF_PROG_LOAD", errno.ENOENT, obj=where, hint="",
                            detail=f"kernel variable {ref!r} is in kernel BTF but has no "
                                   "address in /proc/kallsyms (this kernel lacks "
                                   "CONFIG_KALLSYMS_ALL, so typed __ksym variables cannot "
                                   "be resolved)")
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
            raise LoadError(f"program {p.name!r} ({p.section!r}) replaces a function of another "
                            "BPF program: give the target, e.g. bpfkit.load(path, "
                            f"attach_targets={{{p.name!r}: target_program}}) or set "
                            "spec.programs[name].attach_prog before load")
        else:
            name, kind = target, bt.Func
        tid = self.kernel_id(name, kind)
        if tid is None:
            # ESRCH, as libbpf's find_kernel_btf_id (vmlinux and every module searched)
            raise NotFound("BTF lookup", errno.ESRCH, obj=f"program {p.name!r}",
                           hint="check the function name (it must be in "
                                "/sys/kernel/btf/vmlinux; static or inlined functions are "
                                "not) or choose another hook",
                           detail=f"attach target {target!r} ({kind.__name__} "
                                  f"{name!r}) is not in the kernel's BTF")
        return tid

    def explain(self, p: ProgramSpec, insns: list[asm.Instruction], e: VerifierError,
                core_results: list[Any]) -> VerifierError:
        """Name the source line, and turn poison markers into words."""
        idx = verifier_log.failing_insn(e.log)
        source = (p.source_of(idx) if idx is not None else None) or e.source
        cause = e.cause
        slot_of: dict[int, asm.Instruction] = {}
        s = 0
        for ins in insns:
            slot_of[s] = ins
            s += ins.size
        poison_text = ""
        if core_results:
            from .. import core
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
        unknown = verifier_log.unknown_call_id(e.log)
        if unknown is not None and unknown >= KFUNC_POISON_BASE:
            n = unknown - KFUNC_POISON_BASE
            names = list(self.spec.externs)
            fname = names[n] if n < len(names) else "?"
            cause = (f"weak kernel function {fname!r} is missing in this kernel but is called "
                     "on a reachable path: guard the call with bpf_ksym_exists()")
        kfunc = verifier_log.refused_kfunc(e.log)
        if kfunc:
            cause = (f"kernel function {kfunc} may not be called from this program "
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


# ----------------------------------------------------------------------------- helpers

#: map types created without BTF key/value ids, as libbpf's bpf_object__create_map (their
#: values are fds, CPUs or stacks; the kernel refuses BTF for them), plus PROG_ARRAY, which
#: libbpf tries with BTF and the kernel always refuses
_NO_BTF_MAPS = frozenset({
    MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.STACK_TRACE,
    MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS, MapType.DEVMAP, MapType.DEVMAP_HASH,
    MapType.CPUMAP, MapType.XSKMAP, MapType.SOCKMAP, MapType.SOCKHASH, MapType.QUEUE,
    MapType.STACK, MapType.ARENA, MapType.PROG_ARRAY,
})


def ringbuf_size(size: int) -> int:
    """libbpf's ``adjust_ringbuf_sz``: the smallest page-size * power-of-two >= ``size``.

    The kernel wants a ring buffer's max_entries to be exactly that; libbpf rounds any
    other size up (0 stays 0 so the mistake is reported).
    """
    page = os.sysconf("SC_PAGE_SIZE")
    if size == 0 or (size % page == 0 and ((size // page) & (size // page - 1)) == 0):
        return size
    mul = 1
    while mul * page <= 0xFFFF_FFFF:
        if mul * page > size:
            return mul * page
        mul <<= 1
    return size


def map_defaults(m: MapSpec) -> None:
    """The sizes libbpf fills in before BPF_MAP_CREATE (for ``m`` and its inner template).

    A PERF_EVENT_ARRAY declared without max_entries gets one slot per possible CPU
    (libbpf ``map_set_def_max_entries``); ring buffers are rounded up to a power-of-two
    number of pages (``adjust_ringbuf_sz``).
    """
    for spec in (m, m.inner):
        if spec is None:
            continue
        if spec.type == MapType.PERF_EVENT_ARRAY and not spec.max_entries:
            spec.max_entries = possible_cpus()
        elif spec.type in (MapType.RINGBUF, MapType.USER_RINGBUF):
            spec.max_entries = ringbuf_size(spec.max_entries)


def section_attach_type(p: ProgramSpec, eat: int) -> int:
    """The expected attach type libbpf's ``libbpf_prepare_prog_load`` would load ``p`` with.

    ``SEC_EXP_ATTACH_OPT`` sections drop it on kernels that do not take one (before 4.17),
    and ``SEC("usdt")`` programs get ``BPF_TRACE_UPROBE_MULTI`` when the kernel has
    uprobe-multi links, so that their USDT attachment is one multi link.  Only the
    section's own attach type is adjusted: one the user set on the spec is kept.
    """
    flags = p.info.flags
    if eat != p.info.expected_attach_type or not flags & (SecFlag.EXP_ATTACH_OPT | SecFlag.USDT):
        return eat
    from .. import features
    if flags & SecFlag.EXP_ATTACH_OPT and eat and not features.has_expected_attach_type():
        return 0
    if flags & SecFlag.USDT and features.has_uprobe_multi():
        return int(AttachType.TRACE_UPROBE_MULTI)
    return eat






def prog_target_attrs(p: ProgramSpec) -> dict[str, int]:
    """``attach_prog_fd``/``attach_btf_id`` for a program on a function of another program.

    The function is the section's target (``fentry/<func>``, ``freplace/<func>``), looked
    up as a BTF FUNC in the target program's own BTF (program info ``btf_id`` -> raw BTF),
    which is standalone: ids are the target's, not vmlinux's.
    """
    from ..introspect import btf_raw
    if not p.info.attach_btf:
        raise LoadError(f"program {p.name!r} ({p.section!r}) cannot attach to another BPF "
                        "program: only fentry/fexit/fmod_ret/freplace programs can")
    func = p.attach_target
    if not func:
        raise LoadError(f"program {p.name!r}: the section must name the target function "
                        f"('{p.info.definition.base}/<function>')")
    fd = _prog_fd(p)
    from ..program import ProgramInfo
    info = ProgramInfo.from_fd(fd)
    tname = f"target program {info.name!r} (id {info.id})"
    if not info.btf_id:
        raise LoadError(f"program {p.name!r}: {tname} was loaded without BTF, so its "
                        f"function {func!r} cannot be found (build it with -g)")
    try:
        tbtf = Spec.from_bytes(btf_raw(info.btf_id))
    except BpfkitError as e:
        raise LoadError(f"program {p.name!r}: cannot read the BTF of {tname}: {e}") from e
    ids = tbtf.ids_by_name(func, bt.Func)
    if not ids:
        have = sorted(t.name for t in tbtf if isinstance(t, bt.Func))
        raise NotFound("BTF lookup", errno.ENOENT, obj=f"program {p.name!r}", hint="",
                       detail=f"{tname} has no function {func!r} in its BTF (it has: "
                              f"{', '.join(have) or 'none'})")
    return {"attach_prog_fd": fd, "attach_btf_id": ids[0]}




# ----------------------------------------------------------------------------- BTF sanitizing




def _kname(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name)[:15]


def _map_type_name(t: int) -> str:
    try:
        return MapType(t).name
    except ValueError:
        return str(t)





