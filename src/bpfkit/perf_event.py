"""perf_event_open(2) and its ioctls: the system interface under tracepoints, kprobes and
uprobes (PMU or tracefs events), sampling events and perf buffers.

``struct perf_event_attr`` is built with ctypes; which PMU/tracepoint to open comes from
:mod:`bpfkit.host.tracefs`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
from dataclasses import dataclass

from . import syscall as sc
from .errors import ENOTSUPP, KernelError, kernel_error

__all__ = [
    "PerfEventAttr", "PerfEvent", "perf_event_open", "perf_event_attr", "ioctl_enable",
    "ioctl_disable", "ioctl_set_bpf", "is_einval_like", "PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE",
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













def is_einval_like(e: KernelError) -> bool:
    """Errors that mean "this kernel does not do that": fall back to an older API."""
    return e.errno in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP, errno.ENOSYS)













