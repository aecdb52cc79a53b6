"""Attaching to cgroups (v2) and to perf sampling events.

cgroup programs go through a bpf_link (BPF_LINK_CREATE) when the kernel has cgroup
links, else BPF_PROG_ATTACH, whose undo (BPF_PROG_DETACH) a CallbackLink remembers.
Perf-event programs attach to perf fds opened per CPU (software ``cpu-clock`` sampling
works everywhere, including VMs without a hardware PMU).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from typing import Any

from .. import cleanup
from .. import syscall as sc
from .._consts import BPF_F_ALLOW_MULTI, AttachType, Cmd
from ..errors import AttachError, KernelError
from ..link import CallbackLink, Link
from . import perf
from .perf import PerfEvent, is_einval_like
from .tracing import _track, attach_perf_fd

__all__ = [
    "cgroup2_mount", "cgroup_path", "open_cgroup", "attach_cgroup", "attach_perf_event",
    "open_perf_events_all_cpus", "attach_perf_event_all_cpus",
]


def cgroup2_mount() -> str:
    """Mount point of the unified (v2) cgroup hierarchy, from /proc/mounts."""
    m = perf.find_mount("cgroup2")
    if m is None:
        raise AttachError("no cgroup2 file system is mounted (try 'mount -t cgroup2 none "
                          "/sys/fs/cgroup/unified')")
    return m


def cgroup_path(path: str) -> str:
    """An absolute cgroup path: absolute paths as given, others under the cgroup2 mount."""
    if os.path.isabs(path) and os.path.exists(path):
        return path
    return os.path.join(cgroup2_mount(), path.lstrip("/"))


def open_cgroup(cgroup: str | int) -> tuple[int, bool]:
    """(fd, owned): an fd for a cgroup directory path, or the caller's fd as is."""
    if isinstance(cgroup, int):
        return cgroup, False
    p = cgroup_path(cgroup)
    try:
        return os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), True
    except OSError as e:
        raise AttachError(f"cannot open cgroup {p}: {e.strerror}") from None


def attach_cgroup(prog: Any, cgroup: str | int, attach_type: int | None = None, *,
                  flags: int = BPF_F_ALLOW_MULTI, use_link: bool | None = None) -> Link:
    """Attach a cgroup program (cgroup_skb, sock, sock_addr, sockops, dev, sysctl,
    sockopt...) to a cgroup v2 directory (path or fd).

    ``attach_type`` defaults to the program's expected attach type.  ``use_link``
    True/False forces BPF_LINK_CREATE / BPF_PROG_ATTACH; None tries the link first.
    ``flags`` applies to BPF_PROG_ATTACH (links always allow multiple programs).
    """
    at = int(attach_type if attach_type is not None else prog.expected_attach_type)
    if attach_type is None and at == 0 and int(prog.type) != 8:
        # 0 is CGROUP_INET_INGRESS, valid only for cgroup_skb
        raise AttachError(f"program {prog.name!r} has no expected attach type: pass "
                          "attach_type")
    try:
        at_name = AttachType(at).name.lower()
    except ValueError:
        at_name = str(at)
    where = cgroup if isinstance(cgroup, str) else f"cgroup fd {cgroup}"
    hook = f"cgroup/{at_name} {where}"
    fd, owned = open_cgroup(cgroup)
    try:
        if use_link is not False:
            try:
                lfd = sc.link_create(prog.fd, fd, at, obj=hook)
            except KernelError as e:
                if use_link or not is_einval_like(e):
                    raise
            else:
                if owned:
                    os.close(fd)  # the link holds its own reference to the cgroup
                return _track(prog, Link(lfd, hook, program=prog, hook=hook))
        # BPF_PROG_ATTACH outlives the process: record the intent first, so that
        # `bpfkit cleanup` detaches it (this program id only) if we are killed.
        token = _record_cgroup(fd, prog, at)
        try:
            sc.prog_attach(fd, prog.fd, at, flags=flags, obj=hook)
        except BaseException:
            if token:
                cleanup.forget(token)
            raise
        if token:
            cleanup.confirm(token)
    except BaseException:
        if owned:
            os.close(fd)
        raise
    cg_fd = fd if owned else os.dup(fd)
    prog_fd = os.dup(prog.fd)  # detach must work even after the Program is closed
    link: CallbackLink

    def detach() -> None:
        try:
            sc.prog_detach(cg_fd, prog_fd, at, obj=hook)
            if token:
                cleanup.forget(token)
        finally:
            os.close(cg_fd)
            os.close(prog_fd)
            cleanup.untrack(link)

    link = CallbackLink(detach, hook, program=prog, hook=hook)
    cleanup.track(link)
    return _track(prog, link)


def _record_cgroup(cg_fd: int, prog: Any, at: int) -> str | None:
    """An intent record for a BPF_PROG_ATTACH: the cgroup (its path and id, the inode
    number, which cgroup2 never reuses), the program id and the attach type."""
    path = os.readlink(f"/proc/self/fd/{cg_fd}")
    try:
        prog_id = sc.obj_info(prog.fd, sc.ProgInfo()).id
        return cleanup.record("cgroup", {"path": path, "cgroup_id": os.fstat(cg_fd).st_ino,
                                         "attach_type": int(at), "prog_id": prog_id},
                              module=__name__, state="intent")
    except OSError:
        return None


def _clean_cgroup(rec: cleanup.Record) -> None:
    """Detach the recorded program from the recorded cgroup, if both still exist."""
    d = rec.data
    try:
        cg = os.open(d["path"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # the cgroup is gone, and its attachments with it
    try:
        if os.fstat(cg).st_ino != d["cgroup_id"]:
            return  # another cgroup at the same path: not ours
        try:
            pfd = sc.get_fd_by_id(Cmd.PROG_GET_FD_BY_ID, d["prog_id"])
        except KernelError:
            return  # the program is gone, so it is attached nowhere
        try:
            sc.prog_detach(cg, pfd, d["attach_type"], obj=f"cgroup {d['path']}")
        except KernelError as e:
            if e.errno != errno.ENOENT:  # ENOENT: never attached (an intent) or detached
                raise
        finally:
            os.close(pfd)
    finally:
        os.close(cg)


cleanup.register_cleaner("cgroup", _clean_cgroup)


# --------------------------------------------------------------------------- perf events


def open_perf_events_all_cpus(type: int = perf.PERF_TYPE_SOFTWARE,
                              config: int = perf.PERF_COUNT_SW_CPU_CLOCK, *,
                              sample_period: int = 0, sample_freq: int = 0, pid: int = -1,
                              cpus: Iterable[int] | None = None) -> list[PerfEvent]:
    """One sampling event per online CPU (default: software cpu-clock)."""
    if not sample_period and not sample_freq:
        sample_freq = 99
    events: list[PerfEvent] = []
    try:
        for cpu in (cpus if cpus is not None else perf.online_cpus()):
            attr = perf.perf_event_attr(type, config, sample_period=sample_period,
                                        sample_freq=sample_freq)
            fd = perf.perf_event_open(attr, pid, cpu, -1,
                                      what=f"perf event type {type} config {config} cpu {cpu}")
            events.append(PerfEvent(fd, cpu=cpu, pid=pid,
                                    name=f"perf_event/{type}:{config}/cpu{cpu}"))
    except BaseException:
        for ev in events:
            ev.close()
        raise
    return events


def attach_perf_event(prog: Any, event: int | PerfEvent | None = None, *,
                      type: int = perf.PERF_TYPE_SOFTWARE,
                      config: int = perf.PERF_COUNT_SW_CPU_CLOCK, sample_period: int = 0,
                      sample_freq: int = 0, pid: int = -1, cpu: int = 0, cookie: int = 0,
                      use_link: bool | None = None) -> Link:
    """Attach a PERF_EVENT program to an open event (fd or PerfEvent, which the link
    then owns) or to a new one described by type/config/period/pid/cpu."""
    if event is None:
        if not sample_period and not sample_freq:
            sample_freq = 99
        attr = perf.perf_event_attr(type, config, sample_period=sample_period,
                                    sample_freq=sample_freq)
        what = f"perf_event/{type}:{config}/cpu{cpu}"
        fd = perf.perf_event_open(attr, pid, cpu, -1, what=what)
        return attach_perf_fd(prog, fd, name=what, cookie=cookie, use_link=use_link)
    if isinstance(event, PerfEvent):
        fd, event.fd = event.fd, -1  # the link owns it now
        name = event.name or f"perf_event fd {fd}"
        return attach_perf_fd(prog, fd, name=name, cookie=cookie, use_link=use_link)
    if event < 0:
        raise KernelError("attach perf_event", errno.EBADF, obj=f"fd {event}")
    return attach_perf_fd(prog, event, name=f"perf_event fd {event}", cookie=cookie,
                          use_link=use_link, owns_perf_fd=False)


def attach_perf_event_all_cpus(prog: Any, **kw: Any) -> list[Link]:
    """Open a sampling event per CPU (see open_perf_events_all_cpus) and attach to each."""
    cookie = kw.pop("cookie", 0)
    use_link = kw.pop("use_link", None)
    events = open_perf_events_all_cpus(**kw)
    links: list[Link] = []
    try:
        for ev in events:
            links.append(attach_perf_event(prog, ev, cookie=cookie, use_link=use_link))
    except BaseException:
        for lk in links:
            lk.close()
        for ev in events:
            ev.close()
        raise
    return links
