"""Attaching to kernel tracing hooks: tracepoints, raw tracepoints, BTF-typed hooks,
iterators and kprobes.

Every function takes a loaded :class:`bpfkit.program.Program`, returns a
:class:`bpfkit.link.Link` and appends it to ``prog.links`` so the attachment goes away
with the program.  New kernel APIs (BPF_LINK_CREATE) are tried first; when the kernel
answers EINVAL/EOPNOTSUPP we fall back to the older API, as libbpf does.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import io
import struct
from collections.abc import Callable, Sequence
from typing import Any

from .. import syscall as sc
from .._consts import AttachType, ProgramType
from ..errors import AttachError, KernelError, MissingFeature
from ..host.arch import arch_syscall_prefix
from ..host.kallsyms import text_symbols
from ..link import CallbackLink, Link
from . import perf
from .perf import ProbeEvent, is_einval_like

__all__ = [
    "PerfLink", "PerfIoctlLink", "IterLink", "attach_tracepoint", "attach_raw_tracepoint",
    "attach_trace", "attach_lsm", "attach_iter", "attach_kprobe", "attach_ksyscall",
    "attach_kprobe_multi", "attach_perf_fd", "perf_link_extra", "tracing_link_extra",
    "kprobe_multi_extra", "iter_task_info", "iter_map_info", "iter_cgroup_info",
    "syscall_prefix", "KPROBE_HINT",
]

KPROBE_HINT = ("use a tracepoint instead (tracepoint 'syscalls/sys_enter_<name>' for "
               "syscalls, or raw_tp/tp_btf for scheduler, block, net and other events)")


# --------------------------------------------------------------------------- link classes


class PerfLink(Link):
    """A bpf_link over a perf event: owns the perf fd and the tracefs event behind it."""

    def __init__(self, fd: int, perf_fd: int, name: str = "", *, program: Any = None,
                 hook: str = "", event: ProbeEvent | None = None,
                 owns_perf_fd: bool = True) -> None:
        super().__init__(fd, name, program=program, hook=hook)
        self.perf_fd = perf_fd
        self.event = event
        self._owns_perf = owns_perf_fd

    def close(self) -> None:
        try:
            super().close()
        finally:
            pfd, self.perf_fd = self.perf_fd, -1
            if pfd >= 0 and self._owns_perf:
                sc.close_fd(pfd)
            if self.event is not None:
                self.event.remove()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 or getattr(self, "perf_fd", -1) >= 0:
            self.close()


class PerfIoctlLink(CallbackLink):
    """Legacy attachment (PERF_EVENT_IOC_SET_BPF): closing the perf fd detaches."""

    def __init__(self, perf_fd: int, name: str = "", *, program: Any = None, hook: str = "",
                 event: ProbeEvent | None = None, owns_perf_fd: bool = True) -> None:
        def disable() -> None:
            perf.ioctl_disable(perf_fd)
        super().__init__(disable, name, fd=perf_fd if owns_perf_fd else -1, program=program,
                         hook=hook)
        self.perf_fd = perf_fd
        self.event = event

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.event is not None:
                self.event.remove()

    def info(self) -> Any:
        raise AttachError(f"{self.hook}: a legacy perf event attachment is not a bpf_link")

    def pin(self, path: str) -> None:
        raise AttachError(f"{self.hook}: a legacy perf event attachment (PERF_EVENT_IOC_SET_BPF) "
                          "is not a bpf_link and cannot be pinned")


class IterLink(Link):
    """An iterator link: each ``open()`` starts a new pass over the kernel objects."""

    def open(self) -> io.BufferedReader:
        """A new read-only file over the iterator (BPF_ITER_CREATE)."""
        fd = sc.iter_create(self.fd)
        return open(fd, "rb", closefd=True)

    def read_all(self) -> bytes:
        """Run the iterator to the end and return everything the program wrote."""
        with self.open() as f:
            return f.read()


def _track(prog: Any, link: Link) -> Link:
    prog.links.append(link)
    return link


def _track_event(prog: Any, link: Link) -> Link:
    """Links over a tracefs event must be closed even at exit, or the event stays."""
    if getattr(link, "event", None) is not None:
        reg = perf._registry()
        if reg is not None:
            reg.track(link)
    return _track(prog, link)


# --------------------------------------------------------------------------- attr bytes


def perf_link_extra(cookie: int = 0) -> bytes:
    """LINK_CREATE union for BPF_PERF_EVENT: ``perf_event.bpf_cookie`` (u64)."""
    return struct.pack("<Q", cookie & 0xFFFF_FFFF_FFFF_FFFF)


def tracing_link_extra(target_btf_id: int = 0, cookie: int = 0) -> bytes:
    """LINK_CREATE union for tracing links: ``{u32 target_btf_id; u64 cookie}``."""
    return struct.pack("<IIQ", target_btf_id, 0, cookie & 0xFFFF_FFFF_FFFF_FFFF)


def kprobe_multi_extra(flags: int, cnt: int, syms: int, addrs: int, cookies: int) -> bytes:
    """LINK_CREATE union for kprobe.multi: ``{u32 flags, cnt; u64 syms, addrs, cookies}``."""
    return struct.pack("<IIQQQ", flags, cnt, syms, addrs, cookies)


def iter_task_info(tid: int = 0, pid: int = 0, pid_fd: int = 0) -> bytes:
    """``union bpf_iter_link_info`` for task iterators (16 bytes)."""
    return struct.pack("<IIIxxxx", tid, pid, pid_fd)


def iter_map_info(map_fd: int) -> bytes:
    return struct.pack("<I12x", map_fd)


def iter_cgroup_info(order: int = 0, cgroup_fd: int = 0, cgroup_id: int = 0) -> bytes:
    return struct.pack("<IIQ", order, cgroup_fd, cgroup_id)


# --------------------------------------------------------------------------- perf events


def attach_perf_fd(prog: Any, perf_fd: int, *, name: str, cookie: int = 0,
                   use_link: bool | None = None, event: ProbeEvent | None = None,
                   owns_perf_fd: bool = True) -> Link:
    """Attach ``prog`` to an open perf event: BPF_LINK_CREATE, else SET_BPF + ENABLE.

    ``use_link`` True forces the link, False forces the ioctls, None tries the link
    first.  On failure the perf fd (if owned) and the tracefs event are released.
    """
    def release() -> None:
        if owns_perf_fd:
            sc.close_fd(perf_fd)
        if event is not None:
            event.remove()

    if use_link is not False:
        try:
            lfd = sc.link_create(prog.fd, perf_fd, AttachType.PERF_EVENT,
                                 extra=perf_link_extra(cookie), obj=name)
        except KernelError as e:
            if use_link or not is_einval_like(e):
                release()
                raise
        else:
            return _track_event(prog, PerfLink(lfd, perf_fd, name, program=prog, hook=name,
                                               event=event, owns_perf_fd=owns_perf_fd))
    if cookie:
        release()
        raise MissingFeature("BPF cookies need BPF_LINK_CREATE for perf events (Linux 5.15+)",
                             obj=name, command="attach")
    try:
        perf.ioctl_set_bpf(perf_fd, prog.fd)
        perf.ioctl_enable(perf_fd)
    except KernelError:
        release()
        raise
    return _track_event(prog, PerfIoctlLink(perf_fd, name, program=prog, hook=name,
                                            event=event, owns_perf_fd=owns_perf_fd))


def attach_tracepoint(prog: Any, category: str, name: str, cookie: int = 0, *,
                      use_link: bool | None = None) -> Link:
    """Attach a TRACEPOINT program to ``category/name`` (e.g. ``syscalls``/``sys_enter_getpid``)."""
    tp_id = perf.tracepoint_id(category, name)
    attr = perf.perf_event_attr(perf.PERF_TYPE_TRACEPOINT, tp_id)
    hook = f"tracepoint/{category}/{name}"
    pfd = perf.perf_event_open(attr, -1, 0, -1, what=hook)
    return attach_perf_fd(prog, pfd, name=hook, cookie=cookie, use_link=use_link)


# --------------------------------------------------------------------------- raw / BTF hooks

_BTF_TYPES = (ProgramType.TRACING, ProgramType.LSM, ProgramType.EXT)


def attach_raw_tracepoint(prog: Any, name: str | None = None, cookie: int = 0) -> Link:
    """Attach a raw_tp program to tracepoint ``name``; BTF-typed programs (tp_btf, fentry,
    fexit, fmod_ret, lsm) attach to the target they were loaded for."""
    if int(prog.type) in _BTF_TYPES:
        return attach_trace(prog, cookie=cookie)
    if not name:
        raise AttachError("attach_raw_tracepoint needs a tracepoint name for raw_tp programs")
    fd = sc.raw_tracepoint_open(name, prog.fd, cookie)
    return _track(prog, Link(fd, f"raw_tp/{name}", program=prog, hook=f"raw_tp/{name}"))


def attach_trace(prog: Any, target_prog: Any = None, *, target_btf_id: int = 0,
                 cookie: int = 0) -> Link:
    """Attach a program loaded with an ``attach_btf_id`` (tp_btf, fentry, fexit, fmod_ret,
    lsm, freplace): BPF_LINK_CREATE, falling back to RAW_TRACEPOINT_OPEN(name=NULL)."""
    at = int(prog.expected_attach_type)
    if at == AttachType.TRACE_ITER:
        return attach_iter(prog)
    hook = f"{_at_name(at)} {prog.name}"
    target_fd = target_prog.fd if target_prog is not None else 0
    try:
        fd = sc.link_create(prog.fd, target_fd, at,
                            extra=tracing_link_extra(target_btf_id, cookie), obj=hook)
    except KernelError as e:
        if not is_einval_like(e) or target_fd or target_btf_id or cookie:
            raise
        fd = sc.raw_tracepoint_open(None, prog.fd)
    return _track(prog, Link(fd, hook, program=prog, hook=hook))


def attach_lsm(prog: Any, cookie: int = 0) -> Link:
    """Attach an LSM program (BPF_LSM_MAC) to the hook it was loaded for."""
    if int(prog.type) != ProgramType.LSM:
        raise AttachError(f"program {prog.name!r} is not an LSM program")
    return attach_trace(prog, cookie=cookie)


def _at_name(at: int) -> str:
    try:
        return AttachType(at).name.lower()
    except ValueError:
        return f"attach type {at}"


def attach_iter(prog: Any, map: Any = None, *, tid: int = 0, pid: int = 0, pid_fd: int = 0,
                cgroup_fd: int = 0, cgroup_id: int = 0, order: int = 0) -> IterLink:
    """Create an iterator link; read it with ``link.read_all()`` or pin and ``cat`` it.

    ``map`` for map-element iterators, ``tid``/``pid``/``pid_fd`` to restrict task
    iterators, ``cgroup_fd``/``cgroup_id``/``order`` for cgroup iterators.
    """
    info: bytes = b""
    if map is not None:
        info = iter_map_info(map.fd if hasattr(map, "fd") else int(map))
    elif tid or pid or pid_fd:
        info = iter_task_info(tid, pid, pid_fd)
    elif cgroup_fd or cgroup_id:
        info = iter_cgroup_info(order, cgroup_fd, cgroup_id)
    buf = ctypes.create_string_buffer(info, len(info)) if info else None
    extra = struct.pack("<QI", sc.addr(buf), len(info)) if info else b""
    hook = f"iter {prog.name}"
    fd = sc.link_create(prog.fd, 0, AttachType.TRACE_ITER, extra=extra, obj=hook)
    link = IterLink(fd, hook, program=prog, hook=hook)
    _track(prog, link)
    return link


# --------------------------------------------------------------------------- kprobes


def _require_kprobes(what: str) -> None:
    from ..features import has_kprobes
    f = has_kprobes()
    if not f.supported:
        raise MissingFeature(
            "kprobes are not available: this kernel was built without CONFIG_KPROBES",
            obj=what, hint=KPROBE_HINT, err=errno.ENOENT, command="attach")


def attach_kprobe(prog: Any, func: str | int, offset: int = 0, retprobe: bool = False,
                  cookie: int = 0, maxactive: int = 0, *, use_pmu: bool | None = None) -> Link:
    """Attach a KPROBE program to kernel function ``func`` (name, or an address as int).

    Uses the ``kprobe`` perf PMU; falls back to a tracefs ``kprobe_events`` entry
    (removed on close).  ``maxactive`` (kretprobes) needs the tracefs path.
    """
    what = f"{'kretprobe' if retprobe else 'kprobe'}/{func if isinstance(func, str) else hex(func)}"
    _require_kprobes(what)
    pmu = perf.pmu_type("kprobe")
    if pmu is not None and use_pmu is not False and not maxactive:
        bit = perf.pmu_retprobe_bit("kprobe")
        config = (1 << bit) if (retprobe and bit is not None) else 0
        if isinstance(func, str):
            name_buf = ctypes.create_string_buffer(func.encode())
            attr = perf.perf_event_attr(pmu, config, config1=ctypes.addressof(name_buf),
                                        config2=offset)
        else:
            attr = perf.perf_event_attr(pmu, config, config1=0, config2=func + offset)
        try:
            pfd = perf.perf_event_open(attr, -1, 0, -1, what=what)
        except KernelError:
            if use_pmu:
                raise
        else:
            return attach_perf_fd(prog, pfd, name=what, cookie=cookie)
    target = f"{func}+{offset}" if isinstance(func, str) else f"0x{func + offset:x}"
    prefix = (f"r{maxactive}" if maxactive else "r") if retprobe else "p"
    ev = perf.add_probe_event("kprobe_events", prefix, target, group="kprobes")
    try:
        pfd = perf.perf_event_open(perf.perf_event_attr(perf.PERF_TYPE_TRACEPOINT,
                                                        ev.tracepoint_id), -1, 0, -1, what=what)
    except BaseException:
        ev.remove()
        raise
    return attach_perf_fd(prog, pfd, name=what, cookie=cookie, event=ev)


def syscall_prefix() -> str:
    """The arch prefix of syscall wrapper symbols (``__x64_``), or "" without wrappers."""
    from ..features import has_syscall_wrapper
    if has_syscall_wrapper().supported:
        return arch_syscall_prefix()
    return ""


def attach_ksyscall(prog: Any, name: str, retprobe: bool = False, cookie: int = 0) -> Link:
    """Attach to syscall ``name`` (e.g. ``"openat"``) through its arch wrapper symbol."""
    what = f"{'kretsyscall' if retprobe else 'ksyscall'}/{name}"
    from ..features import has_kprobes
    if not has_kprobes().supported:
        raise MissingFeature(
            "kprobes are not available: this kernel was built without CONFIG_KPROBES",
            obj=what, err=errno.ENOENT, command="attach",
            hint=f"use the tracepoint syscalls/sys_{'exit' if retprobe else 'enter'}_{name} "
                 "instead")
    prefix = syscall_prefix()
    sym = f"{prefix}sys_{name}" if prefix else f"sys_{name}"
    return attach_kprobe(prog, sym, retprobe=retprobe, cookie=cookie)


def _kernel_functions() -> list[str]:
    """Traceable kernel functions: available_filter_functions, else text symbols of kallsyms."""
    try:
        with open(perf.tracefs_file("available_filter_functions")) as f:
            names = [ln.split()[0] for ln in f if ln.strip()]
        if names:
            return names
    except (OSError, AttachError):
        pass
    return text_symbols()


def expand_kernel_patterns(patterns: Sequence[str],
                           functions: Callable[[], list[str]] = _kernel_functions) -> list[str]:
    """Expand glob patterns (``"tcp_*"``) to kernel function names, keeping order, no dups."""
    names: list[str] = []
    seen: set[str] = set()
    pool: list[str] | None = None
    for p in patterns:
        if any(c in p for c in "*?["):
            if pool is None:
                pool = functions()
            for n in pool:
                if n not in seen and fnmatch.fnmatchcase(n, p):
                    seen.add(n)
                    names.append(n)
        elif p not in seen:
            seen.add(p)
            names.append(p)
    return names


def attach_kprobe_multi(prog: Any, patterns: Sequence[str] | None = None, *,
                        addrs: Sequence[int] | None = None, retprobe: bool = False,
                        cookies: Sequence[int] | None = None) -> Link:
    """One BPF_TRACE_KPROBE_MULTI link over many functions (globs or addresses)."""
    what = f"{'kretprobe' if retprobe else 'kprobe'}.multi"
    from ..features import has_kprobe_multi
    f = has_kprobe_multi()
    if not f.supported:
        raise MissingFeature(
            "kprobe.multi links are not available: this kernel was built without "
            "CONFIG_FPROBE", obj=what, hint=KPROBE_HINT + "; or attach single kprobes",
            command="attach")
    if (patterns is None) == (addrs is None):
        raise AttachError("attach_kprobe_multi: give patterns or addrs")
    keep: list[Any] = []
    syms_ptr = addrs_ptr = cookies_ptr = 0
    if patterns is not None:
        names = expand_kernel_patterns(patterns)
        if not names:
            raise AttachError(f"{what}: no kernel function matches {list(patterns)!r}")
        bufs = [ctypes.create_string_buffer(n.encode()) for n in names]
        arr = (ctypes.c_uint64 * len(bufs))(*[ctypes.addressof(b) for b in bufs])
        keep += [bufs, arr]
        syms_ptr, cnt = ctypes.addressof(arr), len(names)
    else:
        assert addrs is not None
        arr2 = (ctypes.c_uint64 * len(addrs))(*addrs)
        keep.append(arr2)
        addrs_ptr, cnt = ctypes.addressof(arr2), len(addrs)
    if cookies is not None:
        if len(cookies) != cnt:
            raise AttachError(f"{what}: {len(cookies)} cookies for {cnt} functions")
        carr = (ctypes.c_uint64 * cnt)(*cookies)
        keep.append(carr)
        cookies_ptr = ctypes.addressof(carr)
    extra = kprobe_multi_extra(1 if retprobe else 0, cnt, syms_ptr, addrs_ptr, cookies_ptr)
    # kprobe.session programs use the same link with their own attach type
    at = (AttachType.TRACE_KPROBE_SESSION
          if int(prog.expected_attach_type) == AttachType.TRACE_KPROBE_SESSION
          else AttachType.TRACE_KPROBE_MULTI)
    fd = sc.link_create(prog.fd, 0, at, extra=extra, obj=what)
    del keep
    return _track(prog, Link(fd, what, program=prog, hook=what))
