"""Feature probes: ask the running kernel, once, whether it has a hook.

Each probe does the smallest real thing (load a two-instruction program, create a
one-entry map, create a link against a harmless or invalid target) and reads the
answer from the kernel's errno.  Answers are cached per process.  A probe never
raises for "no": it returns ``Feature(name, False, reason)``, and :func:`require`
turns that into :class:`~bpfkit.errors.MissingFeature` naming what the kernel lacks.

Probes go per *attach type*, not only per program type: on some kernels ``tp_btf``
and ``iter`` (program type TRACING) load while ``fentry`` (also TRACING) is refused.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import struct
from dataclasses import dataclass
from typing import Any

from .. import asm
from .. import syscall as sc
from .._consts import (
    BPF_F_MMAPABLE,
    BPF_F_NO_PREALLOC,
    BPF_F_SLEEPABLE,
    AttachType,
    HelperId,
    LinkType,
    MapType,
    ProgramType,
)
from ..errors import ENOTSUPP, BpfkitError, KernelError, MissingFeature, VerifierError
from ..host.arch import arch_syscall_prefix
from ..host.kallsyms import has_symbol, kallsyms
from ..host.kconfig import kernel_config
from ..host.version import kernel_version, kernel_version_code
from ..program import load_program

__all__ = [
    "Feature", "require", "clear_cache", "has_program_type", "has_map_type", "has_helper",
    "has_attach_type", "has_link_type", "has_kprobes", "has_kprobe_multi",
    "has_uprobe_multi", "has_expected_attach_type", "has_uprobes", "has_tcx", "has_bpf_cookie",
    "has_syscall_wrapper",
    "kernel_version", "kernel_config",
]


@dataclass(frozen=True)
class Feature:
    """The answer of a probe: ``supported`` and, either way, why."""

    name: str
    supported: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.supported


def require(feature: Feature) -> Feature:
    """Return ``feature`` if supported, else raise MissingFeature naming it."""
    if not feature.supported:
        raise MissingFeature(f"{feature.name} is not available: {feature.reason}",
                             obj=feature.name)
    return feature


_caches: list[Any] = []


def _cached(fn: Any) -> Any:
    c = functools.lru_cache(maxsize=None)(fn)
    _caches.append(c)
    return c


def clear_cache() -> None:
    """Forget every probe answer (e.g. after loading a module)."""
    for c in _caches:
        c.cache_clear()


# --------------------------------------------------------------------------- helpers

_TRIVIAL = asm.encode([asm.mov64_imm(asm.R0, 0), asm.exit()])  # return 0


def _name(enum: Any, v: int) -> str:
    try:
        return str(enum(v).name)
    except ValueError:
        return str(v)


def _config_says_off(option: str) -> bool:
    return kernel_config().get(option) == "n"


def _btf_id(name: str, kind: int) -> int | None:
    """Id of a vmlinux BTF type by name and kind (None when absent or no BTF)."""
    try:
        from ..btf import Spec
        ids = Spec.kernel().ids_by_name(name, kind)
    except (BpfkitError, OSError):
        return None
    return ids[0] if ids else None


_KIND_TYPEDEF, _KIND_FUNC = 8, 12

# program-type load settings so a trivial program is accepted (libbpf does the same)
_PROG_SETTINGS: dict[int, dict[str, Any]] = {
    ProgramType.CGROUP_SOCK_ADDR: {"expected_attach_type": AttachType.CGROUP_INET4_CONNECT},
    ProgramType.CGROUP_SOCKOPT: {"expected_attach_type": AttachType.CGROUP_GETSOCKOPT},
    ProgramType.SK_LOOKUP: {"expected_attach_type": AttachType.SK_LOOKUP},
    ProgramType.NETFILTER: {"expected_attach_type": AttachType.NETFILTER},
    ProgramType.SYSCALL: {"flags": BPF_F_SLEEPABLE},
    ProgramType.LIRC_MODE2: {"expected_attach_type": 16},
}


def _try_load(prog_type: int, insns: bytes = _TRIVIAL, **kw: Any) -> tuple[int, int, str]:
    """(fd or -1, errno, verifier log) of loading ``insns``; never raises for kernel errors."""
    kw.setdefault("kern_version", kernel_version_code())
    try:
        fd, _log = load_program(prog_type, insns, license="GPL", name="bpfkit_probe", **kw)
        return fd, 0, ""
    except VerifierError as e:
        return -1, e.errno, e.log
    except KernelError as e:
        return -1, e.errno, ""


def _load_reason(what: str, err: int) -> str:
    if err == errno.EPERM:
        return (f"the kernel refused {what} with EPERM before verification (lockdown, "
                "missing capabilities, or a kernel built to forbid it)")
    if err == errno.EINVAL:
        return f"the kernel does not know {what} (EINVAL)"
    return f"loading {what} failed with {errno.errorcode.get(err, err)}"


# --------------------------------------------------------------------------- program types


@_cached
def has_program_type(prog_type: int) -> Feature:
    """Can a program of this type be loaded?  TRACING/LSM are answered per attach type."""
    name = f"program type {_name(ProgramType, prog_type)}"
    pt = int(prog_type)
    if pt == ProgramType.TRACING:
        subs = [has_attach_type(pt, a) for a in (AttachType.TRACE_RAW_TP,
                                                  AttachType.TRACE_ITER,
                                                  AttachType.TRACE_FENTRY)]
        ok = [s.name for s in subs if s.supported]
        bad = [f"{s.name}: {s.reason}" for s in subs if not s.supported]
        return Feature(name, bool(ok), ("supported for " + ", ".join(ok) if ok else "")
                       + ("; " if ok and bad else "") + "; ".join(bad))
    if pt == ProgramType.LSM:
        f = has_attach_type(pt, AttachType.LSM_MAC)
        return Feature(name, f.supported, f.reason)
    if pt in (ProgramType.EXT, ProgramType.STRUCT_OPS):
        # need a real target; a bad one (btf id 0) reaches the verifier only if the
        # type exists and is allowed, and then fails with a log
        fd, err, log = _try_load(pt)
        if fd >= 0:
            sc.close_fd(fd)
            return Feature(name, True, "loaded")
        if (err == errno.EINVAL and log.strip()) or err == ENOTSUPP:
            return Feature(name, True, "the kernel knows it (a real load needs an attach "
                                       "target)")
        return Feature(name, False, _load_reason(name, err))
    fd, err, log = _try_load(pt, **_PROG_SETTINGS.get(pt, {}))
    if fd >= 0:
        sc.close_fd(fd)
        return Feature(name, True, "a trivial program loaded")
    return Feature(name, False, _load_reason(name, err) + (f": {log.strip().splitlines()[-1]}"
                                                            if log.strip() else ""))


# --------------------------------------------------------------------------- map types


def _storage_btf() -> int:
    """A tiny BTF (int key, struct {int a;} value) as local-storage maps require."""
    strings = b"\0int\0val\0a\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)  # [1] int, signed 32 bits
    types += struct.pack("<III", 5, (4 << 24) | 1, 4) + struct.pack("<III", 9, 1, 0)  # [2]
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    fd, _ = sc.btf_load(hdr + types + strings)
    return fd


@_cached
def has_map_type(map_type: int) -> Feature:
    """Can a map of this type be created?"""
    mt = int(map_type)
    name = f"map type {_name(MapType, mt)}"
    page = os.sysconf("SC_PAGE_SIZE")
    key, value, entries, flags, extra = 4, 4, 1, 0, 0
    inner = btf_fd = 0
    kw: dict[str, Any] = {}
    closes: list[int] = []
    try:
        if mt == MapType.STACK_TRACE:
            value = 8
        elif mt == MapType.LPM_TRIE:
            key, flags = 8, BPF_F_NO_PREALLOC
        elif mt in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            inner = sc.map_create(MapType.ARRAY, 4, 4, 1)
            closes.append(inner)
        elif mt in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
            key, entries = 16, 0
        elif mt in (MapType.QUEUE, MapType.STACK):
            key = 0
        elif mt == MapType.BLOOM_FILTER:
            key = 0
        elif mt in (MapType.RINGBUF, MapType.USER_RINGBUF):
            key, value, entries = 0, 0, page
        elif mt == MapType.ARENA:
            key, value, entries, flags = 0, 0, 1, BPF_F_MMAPABLE
        elif mt in (MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE,
                    MapType.CGRP_STORAGE):
            entries, flags = 0, BPF_F_NO_PREALLOC
            btf_fd = _storage_btf()
            closes.append(btf_fd)
            kw = {"btf_fd": btf_fd, "btf_key_type_id": 1, "btf_value_type_id": 2}
        elif mt == MapType.STRUCT_OPS:
            tid = _btf_id("bpf_struct_ops_tcp_congestion_ops", 4)
            if tid is None:
                return Feature(name, False, "no vmlinux BTF for struct_ops")
            from ..btf import Spec
            value = Spec.kernel().sizeof(tid)
            btf_fd = _storage_btf()  # the kernel wants some BTF fd alongside the vmlinux id
            closes.append(btf_fd)
            kw = {"btf_fd": btf_fd, "btf_vmlinux_value_type_id": tid}
        try:
            fd = sc.map_create(mt, key, value, entries, flags=flags, inner_map_fd=inner,
                               map_extra=extra, **kw)
        except KernelError as e:
            why = ("the kernel does not know it (EINVAL)" if e.errno == errno.EINVAL
                   else f"map creation failed with {errno.errorcode.get(e.errno, e.errno)}")
            return Feature(name, False, why)
        sc.close_fd(fd)
        return Feature(name, True, "a one-entry map was created")
    except KernelError as e:
        return Feature(name, False, f"probe set-up failed: {e}")
    finally:
        for fd in closes:
            sc.close_fd(fd)


# --------------------------------------------------------------------------- helpers


@_cached
def has_helper(prog_type: int, helper_id: int) -> Feature:
    """May programs of ``prog_type`` call helper ``helper_id``?"""
    from ..asm import HELPER_NAMES
    hname = HELPER_NAMES.get(int(helper_id), f"helper #{int(helper_id)}")
    name = f"helper {hname} in {_name(ProgramType, prog_type)} programs"
    pt = int(prog_type)
    pf = has_program_type(pt)
    if not pf.supported:
        return Feature(name, False, pf.reason)
    # zero the five argument registers, call the helper, return 0
    insns = asm.encode([asm.mov64_imm(r, 0) for r in range(asm.R1, asm.R5 + 1)]
                       + [asm.call(int(helper_id))]) + _TRIVIAL
    kw: dict[str, Any] = dict(_PROG_SETTINGS.get(pt, {}))
    if pt == ProgramType.TRACING:
        tid = _btf_id("btf_trace_sys_enter", _KIND_TYPEDEF)
        kw.update(expected_attach_type=AttachType.TRACE_RAW_TP, attach_btf_id=tid or 0)
    elif pt == ProgramType.LSM:
        tid = _btf_id("bpf_lsm_file_open", _KIND_FUNC)
        kw.update(expected_attach_type=AttachType.LSM_MAC, attach_btf_id=tid or 0)
    fd, err, log = _try_load(pt, insns, **kw)
    if fd >= 0:
        sc.close_fd(fd)
        return Feature(name, True, "a program calling it loaded")
    marks = ("invalid func ", "unknown func ", "cannot use helper", "cannot call helper")
    for line in log.splitlines():
        if any(m in line.lower() for m in marks):
            return Feature(name, False, f"the verifier said: {line.strip()}")
    if log.strip():  # rejected for its (zero) arguments: the helper itself exists
        return Feature(name, True, "the verifier knows the helper for this program type")
    return Feature(name, False, _load_reason(name, err))


# --------------------------------------------------------------------------- attach types

# BTF targets for the BTF-attached attach types: (type name, BTF kind) candidates
_BTF_TARGETS: dict[int, list[tuple[str, int]]] = {
    AttachType.TRACE_RAW_TP: [("btf_trace_sys_enter", _KIND_TYPEDEF),
                              ("btf_trace_sched_switch", _KIND_TYPEDEF)],
    AttachType.TRACE_ITER: [("bpf_iter_task", _KIND_FUNC), ("bpf_iter_bpf_map", _KIND_FUNC)],
    AttachType.TRACE_FENTRY: [("bpf_fentry_test1", _KIND_FUNC), ("do_unlinkat", _KIND_FUNC),
                              ("vfs_read", _KIND_FUNC)],
    AttachType.TRACE_FEXIT: [("bpf_fentry_test1", _KIND_FUNC), ("do_unlinkat", _KIND_FUNC),
                             ("vfs_read", _KIND_FUNC)],
    AttachType.MODIFY_RETURN: [("bpf_modify_return_test", _KIND_FUNC)],
    AttachType.LSM_MAC: [("bpf_lsm_file_open", _KIND_FUNC)],
    AttachType.LSM_CGROUP: [("bpf_lsm_file_open", _KIND_FUNC)],
}

_AT_CONFIG_HINT: dict[int, str] = {
    AttachType.TRACE_FENTRY: "CONFIG_FUNCTION_TRACER/DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    AttachType.TRACE_FEXIT: "CONFIG_FUNCTION_TRACER/DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    AttachType.MODIFY_RETURN: "CONFIG_FUNCTION_ERROR_INJECTION",
    AttachType.LSM_MAC: "CONFIG_BPF_LSM and 'bpf' in the lsm= boot list",
    AttachType.LSM_CGROUP: "CONFIG_BPF_LSM and CONFIG_CGROUP_BPF",
}


@_cached
def has_attach_type(prog_type: int, attach_type: int) -> Feature:
    """Does the kernel accept ``prog_type`` programs for ``attach_type``?

    BTF-attached types load a trivial program against a real vmlinux BTF target;
    link-only attach types (kprobe.multi, uprobe.multi, tcx, perf_event) probe the link.
    """
    pt, at = int(prog_type), int(attach_type)
    name = f"{_name(AttachType, at).lower()} ({_name(ProgramType, pt)} programs)"
    if at == AttachType.TRACE_KPROBE_MULTI:
        return _rename(has_kprobe_multi(), name)
    if at in (AttachType.TRACE_UPROBE_MULTI, AttachType.TRACE_UPROBE_SESSION):
        return _rename(has_uprobe_multi(), name)
    if at in (AttachType.TCX_INGRESS, AttachType.TCX_EGRESS):
        return _rename(has_tcx(), name)
    if at in (AttachType.NETKIT_PRIMARY, AttachType.NETKIT_PEER):
        return _rename(has_link_type(LinkType.NETKIT), name)
    if at == AttachType.PERF_EVENT:
        return _rename(has_link_type(LinkType.PERF_EVENT), name)
    if at in _BTF_TARGETS:
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            return Feature(name, False, "the kernel has no BTF (/sys/kernel/btf/vmlinux, "
                                        "CONFIG_DEBUG_INFO_BTF)")
        tid = None
        for tname, kind in _BTF_TARGETS[at]:
            tid = _btf_id(tname, kind)
            if tid is not None:
                break
        if tid is None:
            return Feature(name, False, "no suitable attach target in vmlinux BTF ("
                           + ", ".join(t for t, _ in _BTF_TARGETS[at]) + ")")
        flags = 0
        fd, err, log = _try_load(pt, expected_attach_type=at, attach_btf_id=tid, flags=flags)
        if fd >= 0:
            sc.close_fd(fd)
            return Feature(name, True, f"a trivial program loaded against BTF id {tid}")
        cfg = _AT_CONFIG_HINT.get(at)
        why = _load_reason(name, err)
        if log.strip():
            why += ": " + log.strip().splitlines()[-1]
        if cfg:
            why += f" (needs {cfg})"
        return Feature(name, False, why)
    fd, err, log = _try_load(pt, expected_attach_type=at)
    if fd >= 0:
        sc.close_fd(fd)
        return Feature(name, True, "a trivial program loaded with this expected attach type")
    return Feature(name, False, _load_reason(name, err))


def _rename(f: Feature, name: str) -> Feature:
    return Feature(name, f.supported, f"{f.name}: {f.reason}" if f.name != name else f.reason)


# --------------------------------------------------------------------------- links


def _load_fd(pt: int, **kw: Any) -> int:
    fd, err, log = _try_load(pt, **kw)
    if fd < 0:
        raise KernelError("BPF_PROG_LOAD", err or errno.EINVAL, obj="probe program")
    return fd


def _link_errno(prog_fd: int, target_fd: int, at: int, extra: bytes = b"",
                flags: int = 0) -> int:
    """0 after creating (and closing) the link, else the errno."""
    try:
        lfd = sc.link_create(prog_fd, target_fd, at, extra=extra, flags=flags)
    except KernelError as e:
        return e.errno
    sc.close_fd(lfd)
    return 0


_NO_IFINDEX = 0x7FFF_FFF0


@_cached
def has_link_type(link_type: int) -> Feature:
    """Can bpf_links of this type be created?"""
    lt = int(link_type)
    name = f"{_name(LinkType, lt).lower()} links"
    if lt == LinkType.KPROBE_MULTI:
        return _rename(has_kprobe_multi(), name)
    if lt == LinkType.UPROBE_MULTI:
        return _rename(has_uprobe_multi(), name)
    if lt == LinkType.STRUCT_OPS:
        ok = kernel_version() >= (6, 4, 0)
        return Feature(name, ok, "struct_ops links came in Linux 6.4 (by kernel version)")
    fds: list[int] = []
    try:
        if lt == LinkType.RAW_TRACEPOINT:
            p = _load_fd(ProgramType.RAW_TRACEPOINT)
            fds.append(p)
            try:
                fds.append(sc.raw_tracepoint_open("sys_enter", p))
                err = 0
            except KernelError as e:
                err = e.errno
            ok = err == 0
        elif lt == LinkType.TRACING:
            f = has_attach_type(ProgramType.TRACING, AttachType.TRACE_RAW_TP)
            if not f.supported:
                return _rename(f, name)
            tid = _btf_id("btf_trace_sys_enter", _KIND_TYPEDEF) or 0
            p = _load_fd(ProgramType.TRACING, expected_attach_type=AttachType.TRACE_RAW_TP,
                         attach_btf_id=tid)
            fds.append(p)
            err = _link_errno(p, 0, AttachType.TRACE_RAW_TP, b"\0" * 16)
            ok = err == 0
        elif lt == LinkType.ITER:
            tid = _btf_id("bpf_iter_task", _KIND_FUNC) or 0
            p = _load_fd(ProgramType.TRACING, expected_attach_type=AttachType.TRACE_ITER,
                         attach_btf_id=tid)
            fds.append(p)
            err = _link_errno(p, 0, AttachType.TRACE_ITER)
            ok = err == 0
        elif lt == LinkType.CGROUP:
            p = _load_fd(ProgramType.CGROUP_SKB,
                         expected_attach_type=AttachType.CGROUP_INET_EGRESS)
            fds.append(p)
            t = os.open("/", os.O_RDONLY | os.O_CLOEXEC)  # not a cgroup: EBADF if links exist
            fds.append(t)
            err = _link_errno(p, t, AttachType.CGROUP_INET_EGRESS)
            ok = err == errno.EBADF
        elif lt == LinkType.NETNS:
            p = _load_fd(ProgramType.SK_LOOKUP, expected_attach_type=AttachType.SK_LOOKUP)
            fds.append(p)
            t = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(t)
            err = _link_errno(p, t, AttachType.SK_LOOKUP)
            ok = err == 0
        elif lt == LinkType.XDP:
            p = _load_fd(ProgramType.XDP, insns=_ret(2), expected_attach_type=AttachType.XDP)
            fds.append(p)
            err = _link_errno(p, 1, AttachType.XDP, flags=1 << 1)  # lo, XDP_FLAGS_SKB_MODE
            ok = err in (0, errno.EBUSY, errno.EEXIST)
        elif lt == LinkType.PERF_EVENT:
            from ..host.tracefs import tracepoint_id
            from ..perf_event import PERF_TYPE_TRACEPOINT, perf_event_attr, perf_event_open
            p = _load_fd(ProgramType.TRACEPOINT)
            fds.append(p)
            tp = tracepoint_id("syscalls", "sys_enter_getpid")
            fds.append(perf_event_open(perf_event_attr(PERF_TYPE_TRACEPOINT, tp), -1, 0))
            err = _link_errno(p, fds[-1], AttachType.PERF_EVENT, b"\0" * 8)
            ok = err == 0
        elif lt == LinkType.NETFILTER:
            p = _load_fd(ProgramType.NETFILTER, expected_attach_type=AttachType.NETFILTER)
            fds.append(p)
            err = _link_errno(p, 0, AttachType.NETFILTER, struct.pack("<IIiI", 255, 0, 0, 0))
            ok = err in (0, errno.EAFNOSUPPORT)
        elif lt in (LinkType.TCX, LinkType.NETKIT):
            at = AttachType.TCX_INGRESS if lt == LinkType.TCX else AttachType.NETKIT_PRIMARY
            p = _load_fd(ProgramType.SCHED_CLS, expected_attach_type=at)
            fds.append(p)
            err = _link_errno(p, _NO_IFINDEX, at)
            ok = err == errno.ENODEV
        elif lt == LinkType.SOCKMAP:
            p = _load_fd(ProgramType.SK_SKB, expected_attach_type=AttachType.SK_SKB_VERDICT)
            fds.append(p)
            fds.append(sc.map_create(MapType.SOCKMAP, 4, 4, 1))
            err = _link_errno(p, fds[-1], AttachType.SK_SKB_VERDICT)
            ok = err == 0
        else:
            return Feature(name, False, "no probe for this link type")
    except (KernelError, BpfkitError, OSError) as e:
        return Feature(name, False, f"probe set-up failed: {e}")
    finally:
        for fd in reversed(fds):
            sc.close_fd(fd)
    why = "created a link" if err == 0 else \
        f"link creation answered {errno.errorcode.get(err, err)}"
    if not ok and lt == LinkType.NETKIT and _config_says_off("CONFIG_NETKIT"):
        why += " (this kernel was built without CONFIG_NETKIT)"
    return Feature(name, ok, why)


def _ret(v: int) -> bytes:
    return asm.encode([asm.mov64_imm(asm.R0, v), asm.exit()])


# --------------------------------------------------------------------------- specific features


@_cached
def has_kprobes() -> Feature:
    """kprobes: the ``kprobe`` perf PMU or tracefs ``kprobe_events``."""
    name = "kprobes"
    if os.path.exists("/sys/bus/event_source/devices/kprobe"):
        return Feature(name, True, "the kprobe PMU exists")
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.exists(os.path.join(d, "kprobe_events")):
            return Feature(name, True, f"{d}/kprobe_events exists")
    why = "this kernel was built without CONFIG_KPROBES"
    if not _config_says_off("CONFIG_KPROBES") and kernel_config():
        why = "no kprobe PMU and no kprobe_events file (CONFIG_KPROBES missing?)"
    return Feature(name, False, why)


@_cached
def has_uprobes() -> Feature:
    name = "uprobes"
    if os.path.exists("/sys/bus/event_source/devices/uprobe"):
        return Feature(name, True, "the uprobe PMU exists")
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.exists(os.path.join(d, "uprobe_events")):
            return Feature(name, True, f"{d}/uprobe_events exists")
    return Feature(name, False, "this kernel was built without CONFIG_UPROBES")


@_cached
def has_kprobe_multi() -> Feature:
    """kprobe.multi links (fprobe): link creation on a missing symbol gives ENOENT."""
    name = "kprobe.multi"
    try:
        p = _load_fd(ProgramType.KPROBE, expected_attach_type=AttachType.TRACE_KPROBE_MULTI)
    except KernelError as e:
        return Feature(name, False, f"KPROBE programs cannot be loaded: {e}")
    try:
        import ctypes
        sym = ctypes.create_string_buffer(b"bpfkit_no_such_function")
        arr = (ctypes.c_uint64 * 1)(ctypes.addressof(sym))
        extra = struct.pack("<IIQQQ", 0, 1, ctypes.addressof(arr), 0, 0)
        err = _link_errno(p, 0, AttachType.TRACE_KPROBE_MULTI, extra)
    finally:
        sc.close_fd(p)
    if err in (0, errno.ENOENT, errno.ESRCH):
        return Feature(name, True, "the kernel looked the symbol up")
    if err in (errno.EOPNOTSUPP, ENOTSUPP):
        return Feature(name, False, "this kernel was built without CONFIG_FPROBE")
    return Feature(name, False, f"link creation answered {errno.errorcode.get(err, err)} "
                                "(kernel older than 5.18?)")


@_cached
def has_expected_attach_type() -> Feature:
    """Does BPF_PROG_LOAD take ``expected_attach_type`` (4.17+)? libbpf's
    ``FEAT_EXP_ATTACH_TYPE`` probe: a CGROUP_SOCK program for INET_SOCK_CREATE."""
    name = "expected_attach_type"
    fd, err, _ = _try_load(ProgramType.CGROUP_SOCK,
                           expected_attach_type=AttachType.CGROUP_INET_SOCK_CREATE)
    if fd >= 0:
        sc.close_fd(fd)
        return Feature(name, True, "a CGROUP_SOCK program loaded with one")
    return Feature(name, False, f"BPF_PROG_LOAD answered {errno.errorcode.get(err, err)}")


@_cached
def has_uprobe_multi() -> Feature:
    """uprobe.multi links: a non-regular path gives EBADF when the kernel has them."""
    name = "uprobe.multi"
    try:
        p = _load_fd(ProgramType.KPROBE, expected_attach_type=AttachType.TRACE_UPROBE_MULTI)
    except KernelError as e:
        return Feature(name, False, f"KPROBE programs cannot be loaded: {e}")
    try:
        import ctypes
        path = ctypes.create_string_buffer(b"/")
        offs = (ctypes.c_uint64 * 1)(0)
        extra = struct.pack("<QQQQIII", ctypes.addressof(path), ctypes.addressof(offs), 0, 0,
                            1, 0, 0)
        err = _link_errno(p, 0, AttachType.TRACE_UPROBE_MULTI, extra)
    finally:
        sc.close_fd(p)
    if err in (0, errno.EBADF):
        return Feature(name, True, "the kernel checked the path")
    if err in (errno.EOPNOTSUPP, ENOTSUPP):
        return Feature(name, False, "this kernel was built without CONFIG_UPROBES")
    return Feature(name, False, f"link creation answered {errno.errorcode.get(err, err)} "
                                "(kernel older than 6.6?)")


def has_tcx() -> Feature:
    """tcx links (Linux 6.6+)."""
    return has_link_type(LinkType.TCX)


@_cached
def has_bpf_cookie() -> Feature:
    """bpf_get_attach_cookie() for tracing programs (Linux 5.15+)."""
    f = has_helper(ProgramType.TRACEPOINT, HelperId.get_attach_cookie)
    return Feature("bpf cookie", f.supported, f.reason)


@_cached
def has_syscall_wrapper() -> Feature:
    """Does the kernel name syscalls through arch wrappers (``__x64_sys_*``)?  Asked of
    /proc/kallsyms, as libbpf does for ``LINUX_HAS_SYSCALL_WRAPPER``."""
    prefix = arch_syscall_prefix()
    name = "syscall wrapper"
    if not prefix:
        return Feature(name, False, f"no known wrapper prefix for {platform.machine()}")
    if not kallsyms():
        return Feature(name, False, "cannot read /proc/kallsyms")
    if has_symbol(f"{prefix}sys_bpf"):
        return Feature(name, True, f"{prefix}sys_bpf is in /proc/kallsyms")
    return Feature(name, False, f"{prefix}sys_bpf is not in /proc/kallsyms")
