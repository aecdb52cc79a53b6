"""perf_event_open(2), its ioctls, and tracefs discovery.

Every tracing hook except raw tracepoints goes through a perf event: tracepoints,
kprobes and uprobes (PMU or legacy tracefs events) and sampling events.  This module
builds ``struct perf_event_attr`` with ctypes and finds the files (tracefs, PMU type
and format files) the kernel exposes for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import re
from dataclasses import dataclass
from typing import Any

from .. import syscall as sc
from ..errors import (
    AttachError,
    KernelError,
    NotFound,
    ParseError,
    PermissionDenied,
    kernel_error,
)

__all__ = [
    "PerfEventAttr", "PerfEvent", "perf_event_open", "perf_event_attr", "ioctl_enable",
    "ioctl_disable", "ioctl_set_bpf", "tracefs_path", "tracefs_file", "tracepoint_id",
    "pmu_type", "pmu_retprobe_bit", "online_cpus", "PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE",
    "PERF_TYPE_TRACEPOINT", "PERF_COUNT_SW_CPU_CLOCK", "PERF_COUNT_SW_TASK_CLOCK",
    "PERF_FLAG_FD_CLOEXEC", "PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE",
    "PERF_EVENT_IOC_SET_BPF", "PERF_ATTR_SIZE_VER8",
]

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_TYPE_HW_CACHE = 3
PERF_TYPE_RAW = 4
PERF_TYPE_BREAKPOINT = 5

PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_TASK_CLOCK = 1
PERF_COUNT_SW_PAGE_FAULTS = 2
PERF_COUNT_SW_CONTEXT_SWITCHES = 3
PERF_COUNT_SW_BPF_OUTPUT = 10

PERF_SAMPLE_RAW = 1 << 10

PERF_FLAG_FD_NO_GROUP = 1 << 0
PERF_FLAG_FD_OUTPUT = 1 << 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FLAG_FD_CLOEXEC = 1 << 3

# perf_event_attr flag bits (the bitfield word at offset 40)
ATTR_DISABLED = 1 << 0
ATTR_INHERIT = 1 << 1
ATTR_FREQ = 1 << 10
ATTR_WATERMARK = 1 << 14

# _IO('$', 0), _IO('$', 1), _IOW('$', 8, __u32)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408

PERF_ATTR_SIZE_VER8 = 136

u16, u32, s32, u64 = ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config3`` (PERF_ATTR_SIZE_VER8, 136 bytes)."""

    _fields_ = [("type", u32), ("size", u32), ("config", u64), ("sample_period", u64),
                ("sample_type", u64), ("read_format", u64), ("flags", u64),
                ("wakeup_events", u32), ("bp_type", u32), ("config1", u64), ("config2", u64),
                ("branch_sample_type", u64), ("sample_regs_user", u64),
                ("sample_stack_user", u32), ("clockid", s32), ("sample_regs_intr", u64),
                ("aux_watermark", u32), ("sample_max_stack", u16), ("_reserved_2", u16),
                ("aux_sample_size", u32), ("_reserved_3", u32), ("sig_data", u64),
                ("config3", u64)]


assert ctypes.sizeof(PerfEventAttr) == PERF_ATTR_SIZE_VER8


def perf_event_attr(type: int, config: int = 0, *, sample_period: int = 0,
                    sample_freq: int = 0, sample_type: int = 0, flags: int = 0,
                    wakeup_events: int = 0, config1: int = 0, config2: int = 0,
                    config3: int = 0) -> PerfEventAttr:
    """Build an attr; ``sample_freq`` sets the ``freq`` bit and shares the period slot."""
    if sample_period and sample_freq:
        raise ValueError("give sample_period or sample_freq, not both")
    if sample_freq:
        flags |= ATTR_FREQ
    return PerfEventAttr(type=type, size=PERF_ATTR_SIZE_VER8, config=config,
                         sample_period=sample_freq or sample_period, sample_type=sample_type,
                         flags=flags, wakeup_events=wakeup_events, config1=config1,
                         config2=config2, config3=config3)


def perf_event_open(attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC, *, what: str = "perf event") -> int:
    """Open a perf event; raises a KernelError naming ``what`` on failure."""
    while True:
        r = sc._syscall(sc.SYS_PERF_EVENT_OPEN, ctypes.c_void_p(ctypes.addressof(attr)),
                        ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(group_fd),
                        ctypes.c_ulong(flags))
        if r >= 0:
            return int(r)
        err = ctypes.get_errno()
        if err != errno.EINTR:
            break
    hint = None
    if err == errno.ENOENT and attr.type == PERF_TYPE_HARDWARE:
        hint = "this machine has no hardware PMU (virtual machine?): use a software event " \
               "such as cpu-clock"
    elif err in (errno.EACCES, errno.EPERM):
        hint = "perf events need root or CAP_PERFMON (see /proc/sys/kernel/perf_event_paranoid)"
    raise kernel_error("perf_event_open", err, obj=what, hint=hint)


def _ioctl(fd: int, req: int, arg: int, what: str) -> None:
    try:
        fcntl.ioctl(fd, req, arg)
    except OSError as e:
        raise kernel_error(what, e.errno or errno.EIO, obj=f"perf event fd {fd}") from None


def ioctl_enable(fd: int) -> None:
    _ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")


def ioctl_disable(fd: int) -> None:
    _ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")


def ioctl_set_bpf(fd: int, prog_fd: int) -> None:
    _ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "PERF_EVENT_IOC_SET_BPF")


@dataclass
class PerfEvent:
    """An open perf event fd (a sampling event, or the target of a probe)."""

    fd: int
    cpu: int = -1
    pid: int = -1
    name: str = ""

    def enable(self) -> None:
        ioctl_enable(self.fd)

    def disable(self) -> None:
        ioctl_disable(self.fd)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            sc.close_fd(fd)

    def __enter__(self) -> PerfEvent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- tracefs


def _mounts() -> list[tuple[str, str]]:
    out = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    out.append((parts[2], parts[1].replace("\\040", " ")))
    except OSError:
        pass
    return out


def find_mount(fstype: str) -> str | None:
    """First mount point of a file system type, from /proc/mounts."""
    for t, path in _mounts():
        if t == fstype:
            return path
    return None


def _mount(source: str, target: str, fstype: str) -> bool:
    """mount(2) through libc; False when it fails (not root, no such fs)."""
    libc = sc.libc
    r = libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(0), None)
    return r == 0


_tracefs_cache: str | None = None


def tracefs_path(*, mount: bool = True) -> str:
    """Where tracefs is: /proc/mounts, else the usual paths, mounting it if we can."""
    global _tracefs_cache
    if _tracefs_cache and os.path.exists(os.path.join(_tracefs_cache, "events")):
        return _tracefs_cache
    cands: list[str] = []
    m = find_mount("tracefs")
    if m:
        cands.append(m)
    dbg = find_mount("debugfs")
    if dbg:
        cands.append(os.path.join(dbg, "tracing"))
    cands += ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    denied: list[str] = []
    for c in cands:
        try:
            os.stat(os.path.join(c, "events"))
        except PermissionError:
            denied.append(c)
            continue
        except OSError:
            continue
        _tracefs_cache = c
        return c
    if denied or (m and not os.access(m, os.R_OK | os.X_OK)):
        where = denied[0] if denied else (m or "")
        try:
            st = os.stat(where)
            how = f"mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid} gid {st.st_gid}"
        except OSError:
            how = "not readable"
        raise PermissionDenied(
            "tracefs access", errno.EACCES, obj=f"tracefs at {where}",
            detail=f"tracefs is mounted but this process cannot read it ({how})",
            hint="run as root, or let this user read tracefs (e.g. 'mount -o remount,mode=755 "
                 f"{where}', or a group with access); CAP_BPF and CAP_PERFMON do not grant "
                 "file access")
    if mount and os.geteuid() == 0 and os.path.isdir("/sys/kernel/tracing"):
        if _mount("tracefs", "/sys/kernel/tracing", "tracefs") and \
                os.path.exists("/sys/kernel/tracing/events"):
            _tracefs_cache = "/sys/kernel/tracing"
            return _tracefs_cache
    raise AttachError("tracefs is not mounted and could not be mounted: run "
                      "'mount -t tracefs tracefs /sys/kernel/tracing' as root")


def tracefs_file(*parts: str) -> str:
    return os.path.join(tracefs_path(), *parts)


def tracepoint_id(category: str, name: str) -> int:
    """The perf config of a tracepoint: tracefs events/<category>/<name>/id."""
    if not category or not name or "/" in category or "/" in name or ".." in (category, name):
        raise AttachError(f"invalid tracepoint {category!r}/{name!r}")
    path = tracefs_file("events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        raise NotFound("tracepoint lookup", errno.ENOENT, obj=f"tracepoint {category}/{name}",
                       hint=f"no such tracepoint (see {tracefs_file('available_events')})")
    except (OSError, ValueError) as e:
        raise AttachError(f"cannot read {path}: {e}") from None


# --------------------------------------------------------------------------- PMUs


_PMU_DIR = "/sys/bus/event_source/devices"


@functools.cache
def pmu_type(name: str) -> int | None:
    """The dynamic PMU type number of ``kprobe``/``uprobe`` (None if the PMU is absent)."""
    try:
        with open(os.path.join(_PMU_DIR, name, "type")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


@functools.cache
def pmu_retprobe_bit(name: str) -> int | None:
    """Bit of ``config`` that asks for a return probe (format/retprobe says ``config:N``)."""
    try:
        with open(os.path.join(_PMU_DIR, name, "format", "retprobe")) as f:
            text = f.read().strip()
    except OSError:
        return None
    return _parse_format_bit(text)


def _parse_format_bit(text: str) -> int | None:
    if not text.startswith("config:"):
        return None
    spec = text.split(":", 1)[1]
    try:
        return int(spec.split("-")[0])
    except ValueError:
        return None


def online_cpus() -> list[int]:
    """CPUs listed in /sys/devices/system/cpu/online (``0-3,5`` ranges)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    return parse_cpu_list(text)


# Linux's NR_CPUS tops out at 8192; a list naming more is not one the kernel wrote.
MAX_CPUS = 1 << 16


def parse_cpu_list(text: str) -> list[int]:
    """CPU numbers of a sysfs list such as ``0-3,5``; ParseError when malformed."""
    cpus: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
            else:
                lo = hi = int(part)
        except ValueError:
            raise ParseError(f"malformed CPU list {text[:80]!r}") from None
        if not 0 <= lo <= hi < MAX_CPUS or len(cpus) + hi - lo >= MAX_CPUS:
            raise ParseError(f"CPU list {text[:80]!r}: {part[:40]!r} is not a range of CPU "
                             f"numbers below {MAX_CPUS}")
        cpus.extend(range(lo, hi + 1))
    return cpus


def is_einval_like(e: KernelError) -> bool:
    """Errors that mean "this kernel does not do that": fall back to an older API."""
    return e.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524, errno.ENOSYS)


# --------------------------------------------------------------------------- legacy probe events

_event_counter = 0
PROBE_EVENT_KIND = "tracefs_probe_event"


def _registry() -> Any:
    """The stale-attachment registry (bpfkit.cleanup), if this build has it."""
    try:
        from .. import cleanup
    except ImportError:
        return None
    return cleanup


def _remove_event_line(events_file: str, group: str, name: str) -> bool:
    """Write ``-:group/name`` to kprobe_events/uprobe_events; True if it is gone."""
    path = tracefs_file(events_file)
    try:
        _write_line(path, f"-:{group}/{name}\n")
        return True
    except FileNotFoundError:
        return True
    except OSError as e:
        return e.errno == errno.ENOENT


def _write_line(path: str, line: str) -> None:
    """One write(2) with O_APPEND (Python's "a" mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _clean_stale_event(rec: Any) -> None:
    """Registry cleaner: remove the probe event of a bpfkit process that died (for an
    intent, the event may never have been made: then there is nothing to do)."""
    data = rec.data
    if not _remove_event_line(str(data["file"]), str(data["group"]), str(data["name"])):
        raise AttachError(f"cannot remove stale probe event {data['group']}/{data['name']}")


_EVENT_NAME = re.compile(r"bpfkit_(\d+)_(\d+)_[0-9a-f]+_\d+")


def _event_owner_dead(name: str) -> bool:
    """Whether an event named by :func:`add_probe_event` belongs to a process that is gone
    (its pid is free, or now names a process with another start time)."""
    m = _EVENT_NAME.fullmatch(name)
    if m is None:
        return False  # not a name we make: not ours to judge
    from ..cleanup import _start_time
    return _start_time(int(m.group(1))) != int(m.group(2))  # None: gone or a zombie


def reclaim_stale_events(events_file: str) -> list[str]:
    """Remove the probe events of dead bpfkit processes in ``events_file`` (kprobe_events or
    uprobe_events), whether or not a record of them survived; returns their names.  An
    event some live process still uses is busy and stays."""
    try:
        with open(tracefs_file(events_file)) as f:
            lines = f.read().splitlines()
    except (OSError, AttachError):
        return []
    gone = []
    for line in lines:
        head = line.split(None, 1)[0] if line.strip() else ""
        group, _, name = head.partition(":")[2].partition("/")
        if name and _event_owner_dead(name):
            try:
                _write_line(tracefs_file(events_file), f"-:{group}/{name}\n")
            except OSError:
                continue  # busy (a perf event of a live process) or already gone
            gone.append(f"{group}/{name}")
    return gone


def _register_cleaner() -> None:
    reg = _registry()
    if reg is not None:
        reg.register_cleaner(PROBE_EVENT_KIND, _clean_stale_event)


_register_cleaner()


class ProbeEvent:
    """A kprobe/uprobe event created through tracefs; ``remove()`` deletes it."""

    def __init__(self, events_file: str, group: str, name: str, token: object) -> None:
        self.events_file = events_file
        self.group = group
        self.name = name
        self._token = token
        self.removed = False

    @property
    def tracepoint_id(self) -> int:
        return tracepoint_id(self.group, self.name)

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        _remove_event_line(self.events_file, self.group, self.name)
        reg = _registry()
        if reg is not None and self._token is not None:
            try:
                reg.forget(self._token)
            except OSError:
                pass


def add_probe_event(events_file: str, prefix: str, target: str, *, group: str) -> ProbeEvent:
    """Create ``<prefix>:<group>/bpfkit_<pid>_<n> <target>`` in kprobe_events/uprobe_events.

    ``prefix`` is ``p``, ``r`` or ``r<maxactive>``.  The event is recorded in the
    stale-attachment registry so a crashed process's events can be removed later.
    """
    global _event_counter
    path = tracefs_file(events_file)
    if not os.path.exists(path):
        raise NotFound("tracefs probe event", errno.ENOENT, obj=events_file,
                       hint=f"{path} does not exist: this kernel lacks the probe type")
    if events_file not in _reclaimed:
        _reclaimed.add(events_file)
        reclaim_stale_events(events_file)
    _event_counter += 1
    # pid + start time + a per-process random part: no two processes (nor a process and
    # a dead one whose pid it reused) ever make the same name, so no EEXIST
    name = f"bpfkit_{os.getpid()}_{_my_start()}_{_RANDOM}_{_event_counter}"
    line = f"{prefix}:{group}/{name} {target}\n"
    token = None
    reg = _registry()
    if reg is not None:
        try:  # intent first: a kill right after the write still leaves a record
            token = reg.record(PROBE_EVENT_KIND, {"file": events_file, "group": group,
                                                  "name": name}, module=__name__,
                               state="intent")
        except OSError:
            token = None
    try:
        _write_line(path, line)
    except OSError as e:
        if token is not None:
            reg.forget(token)
        detail = _last_error_log()
        raise kernel_error(f"write {events_file}", e.errno or errno.EINVAL,
                           obj=line.strip(), detail=detail or None,
                           hint="the kernel rejected the probe definition (bad symbol, "
                                "offset or path?)") from None
    if token is not None:
        with contextlib.suppress(OSError):
            reg.confirm(token)
    return ProbeEvent(events_file, group, name, token)


_reclaimed: set[str] = set()
_RANDOM = os.urandom(3).hex()


def _my_start() -> int:
    from ..cleanup import process_start_time
    return process_start_time() or 0


def _reset_after_fork() -> None:
    global _RANDOM
    _RANDOM = os.urandom(3).hex()
    _reclaimed.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _last_error_log() -> str:
    try:
        with open(tracefs_file("error_log")) as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
        return lines[-2] if len(lines) >= 2 else (lines[-1] if lines else "")
    except (OSError, AttachError):
        return ""
