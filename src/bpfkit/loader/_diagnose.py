"""Why the kernel refused a program: refusal messages and the failing instruction of a
verifier log, with the CO-RE relocation it came from."""

from __future__ import annotations

from typing import Any

from .._consts import AttachType, ProgramType
from ..btf import Spec
from ..btf import types as bt
from ..errors import (
    BpfkitError,
    KernelError,
    LoadError,
    PermissionDenied,
)
from ..spec import (
    ProgramSpec,
    _strip,
)

_GATED_TYPES = (ProgramType.TRACING, ProgramType.EXT, ProgramType.LSM)


def _refused(p: ProgramSpec, eat: int, e: KernelError) -> KernelError:
    """EPERM before verification on a trampoline program: say so in plain words."""
    pt = _enum_name(ProgramType, p.prog_type)
    at = f" with attach type {_enum_name(AttachType, eat)}" if p.prog_type != ProgramType.EXT \
        else ""
    target = ""
    if p.attach_prog is not None:
        target = f" (target: function {p.attach_target!r} of BPF program fd {_prog_fd(p)})"
    return PermissionDenied(
        "BPF_PROG_LOAD", e.errno, obj=f"program {p.name!r} (section {p.section!r})",
        detail=f"the kernel refuses {pt} programs{at}{target} before verification",
        hint="this kernel does not allow fentry/fexit/fmod_ret/freplace/lsm programs "
             "(TRACING/EXT/LSM program types; e.g. no CONFIG_FUNCTION_TRACER or "
             "DYNAMIC_FTRACE_WITH_DIRECT_CALLS, lockdown) or the process lacks "
             "CAP_BPF+CAP_PERFMON; check bpfkit.attach.features.has_attach_type()")


def _enum_name(enum: Any, v: int) -> str:
    try:
        return str(enum(v).name)
    except ValueError:
        return str(v)


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


def _prog_fd(p: ProgramSpec) -> int:
    tgt = p.attach_prog
    fd = getattr(tgt, "fd", tgt)
    if not isinstance(fd, int) or isinstance(fd, bool) or fd <= 0:
        raise LoadError(f"program {p.name!r}: attach target must be a loaded Program or a "
                        f"program fd, not {tgt!r}")
    return fd
