"""struct_ops values: a struct_ops map value laid out for the kernel's struct, with the
object's function pointers replaced by program fds."""

from __future__ import annotations

from collections.abc import Mapping

from ..btf import Spec
from ..btf import types as bt
from ..errors import (
    LoadError,
)
from ..spec import (
    StructOpsSpec,
    _strip,
)


def _is_func_ptr(btf: Spec, tid: int) -> bool:
    t = btf.type(_strip(btf, tid))
    return isinstance(t, bt.Pointer) and isinstance(btf.type(_strip(btf, t.type)), bt.FuncProto)


def struct_ops_value(so: StructOpsSpec, local: Spec, kernel: Spec, kernel_type_id: int,
                     wrapper_id: int, prog_fds: Mapping[str, int], what: str = "struct_ops"
                     ) -> bytes:
    """The value of a struct_ops map in the kernel's layout (``struct bpf_struct_ops_<t>``).

    Members are matched by name, as libbpf does (the object may declare only some
    members, in any order): data members are copied when their sizes agree, function
    pointers get program fds, everything else stays zero.  A non-zero member the kernel
    cannot take (unknown name, size mismatch, bitfield) is an error rather than dropped.
    """
    wrapper = kernel.type(wrapper_id)
    if not isinstance(wrapper, bt.Struct):
        raise LoadError(f"{what}: kernel type {wrapper_id} is not a struct")
    dmem = next((mm for mm in wrapper.members
                 if _strip(kernel, mm.type) == kernel_type_id), None)
    if dmem is None:
        raise LoadError(f"{what}: {wrapper.name} has no member of type struct {so.type_name}")
    base = dmem.bit_offset // 8
    kt = kernel.type(kernel_type_id)
    lt = local.type(so.type_id)
    if not isinstance(kt, bt.Struct) or not isinstance(lt, bt.Struct):
        raise LoadError(f"{what}: struct {so.type_name} is not a struct")
    out = bytearray(wrapper.size)
    lmembers = {mm.name: mm for mm in lt.members}

    def local_bytes(mm: bt.Member) -> bytes:
        off = mm.bit_offset // 8
        return bytes(so.data[off:off + local.sizeof(mm.type)])

    for km in kt.members:
        lm = lmembers.pop(km.name, None) if km.name else None
        if lm is None:
            continue
        koff = base + km.bit_offset // 8
        where = f"{what}: member {km.name!r}"
        if _is_func_ptr(kernel, km.type):
            if km.name in prog_fds:
                out[koff:koff + 8] = prog_fds[km.name].to_bytes(8, "little")
            elif km.name in so.programs:
                raise LoadError(f"{where}: program {so.programs[km.name]!r} has no fd")
            elif any(local_bytes(lm)):
                raise LoadError(f"{where}: a function pointer must point at a "
                                "SEC(\"struct_ops/...\") program")
            continue
        raw = local_bytes(lm)
        if km.name in so.programs:
            raise LoadError(f"{where} is not a function pointer in the kernel's struct "
                            f"{so.type_name}")
        if km.bitfield_size or lm.bitfield_size or km.bit_offset % 8:
            if any(raw):
                raise LoadError(f"{where}: bitfields cannot be initialised")
            continue
        ksize = kernel.sizeof(km.type)
        if ksize != len(raw):
            if any(raw):
                raise LoadError(f"{where} is {len(raw)} bytes here but {ksize} in the "
                                f"kernel's struct {so.type_name}")
            continue
        out[koff:koff + ksize] = raw
    for name, lm in lmembers.items():
        if name in so.programs or any(local_bytes(lm)):
            raise LoadError(f"{what}: member {name or '<anonymous>'!r} is set but the kernel's "
                            f"struct {so.type_name} has no such member")
    return bytes(out)
