"""The bpfkit exception hierarchy.

Every failure a user can meet is a :class:`BpfkitError`.  Kernel failures carry the
command that failed, the object it concerned and a hint saying what to do, because
a bare ``EPERM`` from ``bpf(2)`` tells a user nothing actionable.
"""

from __future__ import annotations

import errno as _errno
import os

from .verifier_log import summarize

ENOTSUPP = 524  # kernel-internal "not supported" errno that leaks to user space


class BpfkitError(Exception):
    """Base class of every error bpfkit raises."""


class ParseError(BpfkitError):
    """Malformed input to one of the pure parsers (ELF, BTF, BTF.ext, USDT notes...)."""


class ElfError(ParseError):
    """A malformed or unsupported ELF file."""


class BTFError(ParseError):
    """Malformed BTF or BTF.ext data, or a BTF query that cannot be answered."""


class DwarfError(ParseError):
    """Malformed or unsupported DWARF debug information (``.debug_*`` sections)."""


class SpecError(ParseError):
    """An object file that parses but cannot describe a valid collection (a ParseError: the
    object is still untrusted input, and callers catch one class for "bad object")."""


class UsageError(BpfkitError):
    """A value the user typed cannot be used (a --const of the wrong type, a number out of
    range): the command line's exit code 2, like argparse's own errors."""


class KernelError(BpfkitError):
    """A system call into the kernel failed.

    ``errno`` is the raw error number, ``command`` the syscall command (e.g.
    ``BPF_MAP_CREATE``), ``obj`` what it concerned (map/program/hook name) and
    ``hint`` what the user can do about it.
    """

    def __init__(self, command: str, err: int, obj: str | None = None,
                 hint: str | None = None, detail: str | None = None) -> None:
        self.errno = err
        self.command = command
        self.obj = obj
        self.hint = hint if hint is not None else default_hint(command, err)
        self.detail = detail
        super().__init__(self._format())

    def _format(self) -> str:
        what = self.command + (f" on {self.obj}" if self.obj else "")
        name = _errno.errorcode.get(self.errno, str(self.errno))
        msg = f"{what} failed: {name} ({os.strerror(self.errno)})"
        if self.detail:
            msg += f": {self.detail}"
        if self.hint:
            msg += f". {self.hint}"
        return msg


class PermissionDenied(KernelError):
    """EPERM/EACCES: missing capability, lockdown, or a kernel that refuses the hook."""


class NotSupported(KernelError):
    """The running kernel lacks a feature (program/map/attach/link type, helper, config)."""


class NotFound(KernelError):
    """ENOENT (or ESRCH, as libbpf for a missing BTF attach target): no such element, id,
    pin path, tracepoint or symbol."""


class VerifierError(KernelError):
    """The verifier rejected a program.

    ``str(err)`` is the one-line cause (with the source line when BTF line info is
    known); ``err.log`` is the full verifier log.
    """

    def __init__(self, program: str, err: int, log: str, cause: str | None = None,
                 source: str | None = None) -> None:
        self.log = log
        self.cause = cause if cause is not None else summarize_log(log)
        self.source = source
        detail = self.cause
        if source:
            detail = f"{detail} (at {source})"
        super().__init__("BPF_PROG_LOAD", err, obj=f"program {program!r}", hint="",
                         detail=detail or "verifier rejected the program")

    def _format(self) -> str:
        base = f"verifier rejected {self.obj}: {self.detail}"
        return base


class LoadError(BpfkitError):
    """Loading a collection failed for a reason other than a syscall error."""


class CoreRelocationError(LoadError):
    """A CO-RE relocation could not be resolved against the target BTF."""


class AttachError(BpfkitError):
    """A program could not be attached to its hook (bad target, missing hook...)."""


class MissingFeature(NotSupported):
    """A hook or feature this kernel does not provide, with the missing kernel feature named."""

    def __init__(self, feature: str, obj: str | None = None, hint: str | None = None,
                 err: int = _errno.EOPNOTSUPP, command: str = "feature probe") -> None:
        self.feature = feature
        super().__init__(command, err, obj=obj, hint=hint or "", detail=feature)


def summarize_log(log: str) -> str:
    """The verifier log's most meaningful line (see :func:`bpfkit.verifier_log.summarize`)."""
    return summarize(log)


_HINTS = {
    _errno.EPERM: "run as root, or grant CAP_BPF (plus CAP_PERFMON for tracing, CAP_NET_ADMIN "
                  "for networking); kernel lockdown or a kernel that forbids this program "
                  "type also gives EPERM",
    _errno.EACCES: "permission denied: run as root or check file permissions and lockdown",
    _errno.E2BIG: "the kernel rejected an attribute as too big: it may be older than this "
                  "feature (unknown trailing fields must be zero)",
    _errno.EINVAL: "the kernel rejected an attribute: check the type, sizes and flags, or the "
                   "kernel may not support this combination",
    _errno.ENOENT: "no such element or object",
    _errno.EBADF: "a file descriptor was closed or invalid",
    _errno.ENOMEM: "out of memory (or memlock/memcg limit reached)",
    _errno.EOPNOTSUPP: "this kernel does not support the operation",
    ENOTSUPP: "this kernel does not support the operation",
    _errno.EEXIST: "the element or attachment already exists",
    _errno.ENOSPC: "the map is full",
    _errno.EBUSY: "the hook is busy: something else is attached",
}


CAPS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38,
        "CAP_BPF": 39}

# What BPF_PROG_LOAD demands beyond CAP_BPF, by program type name (the kernel's
# is_net_admin_prog_type() and is_perfmon_prog_type() in kernel/bpf/syscall.c).
_NET_ADMIN_PROGS = frozenset({
    "SCHED_CLS", "SCHED_ACT", "XDP", "LWT_IN", "LWT_OUT", "LWT_XMIT", "LWT_SEG6LOCAL",
    "SK_SKB", "SK_MSG", "FLOW_DISSECTOR", "CGROUP_DEVICE", "CGROUP_SOCK", "CGROUP_SOCK_ADDR",
    "CGROUP_SOCKOPT", "CGROUP_SYSCTL", "SOCK_OPS", "EXT", "NETFILTER"})
_PERFMON_PROGS = frozenset({
    "KPROBE", "TRACEPOINT", "PERF_EVENT", "RAW_TRACEPOINT", "RAW_TRACEPOINT_WRITABLE",
    "TRACING", "LSM", "STRUCT_OPS", "EXT"})


def caps_for_program(prog_type: str) -> list[str]:
    """The capabilities loading a program of this type needs (CAP_SYS_ADMIN covers all)."""
    need = ["CAP_BPF"]
    if prog_type in _PERFMON_PROGS:
        need.append("CAP_PERFMON")
    if prog_type in _NET_ADMIN_PROGS:
        need.append("CAP_NET_ADMIN")
    return need


def missing_caps(need: list[str]) -> list[str]:
    """Those of ``need`` this process lacks ([] when it has them, CAP_SYS_ADMIN, or we
    cannot tell)."""
    caps = effective_caps()
    if caps is None or "CAP_SYS_ADMIN" in caps:
        return []
    return [c for c in need if c not in caps]


def effective_caps() -> set[str] | None:
    """Names of the capabilities above that this process has (None if unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    bits = int(line.split()[1], 16)
                    return {n for n, b in CAPS.items() if bits >> b & 1}
    except OSError:
        pass
    return None


def _perm_hint(command: str) -> str | None:
    """Name the capability that is missing, when that explains an EPERM."""
    caps = effective_caps()
    if caps is None or "CAP_SYS_ADMIN" in caps:
        return None
    need = ["CAP_BPF"] if command.startswith("BPF_") else []
    if command.startswith("perf_event_open") or "PERF" in command:
        need.append("CAP_PERFMON")
    if command.startswith(("RTM_", "netlink")):
        need.append("CAP_NET_ADMIN")
    missing = [c for c in need if c not in caps]
    if missing:
        return (f"this process lacks {' and '.join(missing)}: run as root or grant "
                f"{', '.join(missing)} (tracing also needs CAP_PERFMON, tc/xdp/cgroup "
                "CAP_NET_ADMIN)")
    return None


def default_hint(command: str, err: int) -> str:
    if err in (_errno.EPERM, _errno.EACCES):
        h = _perm_hint(command)
        if h:
            return h
    return _HINTS.get(err, "")




def error_class(err: int) -> type[KernelError]:
    if err in (_errno.EPERM, _errno.EACCES):
        return PermissionDenied
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return NotSupported
    if err == _errno.ENOENT:
        return NotFound
    return KernelError


def kernel_error(command: str, err: int, obj: str | None = None, hint: str | None = None,
                 detail: str | None = None) -> KernelError:
    """Build the most specific :class:`KernelError` subclass for ``err``."""
    return error_class(err)(command, err, obj=obj, hint=hint, detail=detail)
