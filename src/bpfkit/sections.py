"""libbpf's ``SEC()`` naming convention as data, and the parser that applies it.

Section names are an API: users write ``SEC("tp/syscalls/sys_enter_getpid")`` once and
expect every loader to derive the same program type, expected attach type, flags and
auto-attach target.  The table mirrors libbpf 1.7's ``section_defs[]`` (same order, same
matching rules) so objects built for libbpf load identically here.

Matching rules:

* ``"type/"`` matches only ``type/<extras>``;
* ``"type+"`` matches ``type`` exactly or ``type/<extras>``;
* anything else must match exactly.

The first matching entry wins, which is why ``sk_reuseport/migrate`` precedes
``sk_reuseport`` and ``xdp.frags/devmap`` precedes ``xdp.frags``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntFlag

from ._consts import BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, AttachType, ProgramType
from .errors import SpecError

__all__ = ["SecFlag", "SectionDef", "SectionInfo", "SECTION_DEFS", "parse_section",
           "find_section_def", "is_program_section"]


class SecFlag(IntFlag):
    """Per-entry flags (libbpf's ``SEC_*``)."""

    NONE = 0
    EXP_ATTACH_OPT = 1  # drop expected_attach_type when the kernel lacks it
    ATTACHABLE = 2  # legacy BPF_PROG_ATTACH era
    ATTACH_BTF = 4  # attach target is a BTF id (vmlinux, module or program)
    SLEEPABLE = 8  # BPF_F_SLEEPABLE
    XDP_FRAGS = 16  # BPF_F_XDP_HAS_FRAGS
    USDT = 32  # USDT attach set-up
    ATTACHABLE_OPT = ATTACHABLE | EXP_ATTACH_OPT


@dataclass(frozen=True)
class SectionDef:
    """One row of the table.

    ``expected_attach_type`` is the UAPI enumerator name without ``BPF_`` (None for 0),
    kept as a name so entries for attach types newer than our constants still parse
    until a program actually uses them.
    """

    prefix: str
    prog_type: ProgramType
    expected_attach_type: str | None
    flags: SecFlag
    auto_attach: str | None = None

    def matches(self, name: str) -> bool:
        p = self.prefix
        if p.endswith("/"):
            return name.startswith(p)
        if p.endswith("+"):
            base = p[:-1]
            return name == base or name.startswith(base + "/")
        return name == p

    @property
    def base(self) -> str:
        """The prefix without its ``+`` marker."""
        return self.prefix[:-1] if self.prefix.endswith("+") else self.prefix


@dataclass(frozen=True)
class SectionInfo:
    """What a section name means for loading and attaching a program."""

    section: str
    definition: SectionDef
    prog_type: ProgramType
    expected_attach_type: int
    sleepable: bool
    frags: bool
    attach_target: str

    @property
    def auto_attach(self) -> str | None:
        return self.definition.auto_attach

    @property
    def flags(self) -> SecFlag:
        return self.definition.flags

    @property
    def prog_flags(self) -> int:
        """``BPF_F_*`` program-load flags the section implies."""
        return (BPF_F_SLEEPABLE if self.sleepable else 0) | (
            BPF_F_XDP_HAS_FRAGS if self.frags else 0)

    @property
    def attach_btf(self) -> bool:
        return bool(self.definition.flags & SecFlag.ATTACH_BTF)

    @property
    def is_return(self) -> bool:
        """kretprobe/uretprobe/kretsyscall style sections (probe on function return)."""
        return self.definition.base.split(".")[0] in ("kretprobe", "uretprobe", "kretsyscall")


PT = ProgramType
N, OPT, ATT, BTF, SLP, FRAGS, USDT = (SecFlag.NONE, SecFlag.ATTACHABLE_OPT, SecFlag.ATTACHABLE,
                                      SecFlag.ATTACH_BTF, SecFlag.SLEEPABLE, SecFlag.XDP_FRAGS,
                                      SecFlag.USDT)


def _d(prefix: str, pt: ProgramType, at: str | None, flags: SecFlag = N,
       auto: str | None = None) -> SectionDef:
    return SectionDef(prefix, pt, at, flags, auto)


SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", PT.SOCKET_FILTER, None),
    _d("sk_reuseport/migrate", PT.SK_REUSEPORT, "SK_REUSEPORT_SELECT_OR_MIGRATE", ATT),
    _d("sk_reuseport", PT.SK_REUSEPORT, "SK_REUSEPORT_SELECT", ATT),
    _d("kprobe+", PT.KPROBE, None, N, "kprobe"),
    _d("uprobe+", PT.KPROBE, None, N, "uprobe"),
    _d("uprobe.s+", PT.KPROBE, None, SLP, "uprobe"),
    _d("kretprobe+", PT.KPROBE, None, N, "kprobe"),
    _d("uretprobe+", PT.KPROBE, None, N, "uprobe"),
    _d("uretprobe.s+", PT.KPROBE, None, SLP, "uprobe"),
    _d("kprobe.multi+", PT.KPROBE, "TRACE_KPROBE_MULTI", N, "kprobe_multi"),
    _d("kretprobe.multi+", PT.KPROBE, "TRACE_KPROBE_MULTI", N, "kprobe_multi"),
    _d("kprobe.session+", PT.KPROBE, "TRACE_KPROBE_SESSION", N, "kprobe_session"),
    _d("uprobe.multi+", PT.KPROBE, "TRACE_UPROBE_MULTI", N, "uprobe_multi"),
    _d("uretprobe.multi+", PT.KPROBE, "TRACE_UPROBE_MULTI", N, "uprobe_multi"),
    _d("uprobe.session+", PT.KPROBE, "TRACE_UPROBE_SESSION", N, "uprobe_multi"),
    _d("uprobe.multi.s+", PT.KPROBE, "TRACE_UPROBE_MULTI", SLP, "uprobe_multi"),
    _d("uretprobe.multi.s+", PT.KPROBE, "TRACE_UPROBE_MULTI", SLP, "uprobe_multi"),
    _d("uprobe.session.s+", PT.KPROBE, "TRACE_UPROBE_SESSION", SLP, "uprobe_multi"),
    _d("ksyscall+", PT.KPROBE, None, N, "ksyscall"),
    _d("kretsyscall+", PT.KPROBE, None, N, "ksyscall"),
    _d("usdt+", PT.KPROBE, None, USDT, "usdt"),
    _d("usdt.s+", PT.KPROBE, None, USDT | SLP, "usdt"),
    _d("tc/ingress", PT.SCHED_CLS, "TCX_INGRESS"),
    _d("tc/egress", PT.SCHED_CLS, "TCX_EGRESS"),
    _d("tcx/ingress", PT.SCHED_CLS, "TCX_INGRESS"),
    _d("tcx/egress", PT.SCHED_CLS, "TCX_EGRESS"),
    _d("tc", PT.SCHED_CLS, None),
    _d("classifier", PT.SCHED_CLS, None),
    _d("action", PT.SCHED_ACT, None),
    _d("netkit/primary", PT.SCHED_CLS, "NETKIT_PRIMARY"),
    _d("netkit/peer", PT.SCHED_CLS, "NETKIT_PEER"),
    _d("tracepoint+", PT.TRACEPOINT, None, N, "tracepoint"),
    _d("tp+", PT.TRACEPOINT, None, N, "tracepoint"),
    _d("tracepoint.s+", PT.TRACEPOINT, None, SLP, "tracepoint"),
    _d("tp.s+", PT.TRACEPOINT, None, SLP, "tracepoint"),
    _d("raw_tracepoint+", PT.RAW_TRACEPOINT, None, N, "raw_tp"),
    _d("raw_tp+", PT.RAW_TRACEPOINT, None, N, "raw_tp"),
    _d("raw_tracepoint.s+", PT.RAW_TRACEPOINT, None, SLP, "raw_tp"),
    _d("raw_tp.s+", PT.RAW_TRACEPOINT, None, SLP, "raw_tp"),
    _d("raw_tracepoint.w+", PT.RAW_TRACEPOINT_WRITABLE, None, N, "raw_tp"),
    _d("raw_tp.w+", PT.RAW_TRACEPOINT_WRITABLE, None, N, "raw_tp"),
    _d("tp_btf+", PT.TRACING, "TRACE_RAW_TP", BTF, "trace"),
    _d("tp_btf.s+", PT.TRACING, "TRACE_RAW_TP", BTF | SLP, "trace"),
    _d("fentry+", PT.TRACING, "TRACE_FENTRY", BTF, "trace"),
    _d("fmod_ret+", PT.TRACING, "MODIFY_RETURN", BTF, "trace"),
    _d("fexit+", PT.TRACING, "TRACE_FEXIT", BTF, "trace"),
    _d("fentry.s+", PT.TRACING, "TRACE_FENTRY", BTF | SLP, "trace"),
    _d("fmod_ret.s+", PT.TRACING, "MODIFY_RETURN", BTF | SLP, "trace"),
    _d("fexit.s+", PT.TRACING, "TRACE_FEXIT", BTF | SLP, "trace"),
    _d("fsession+", PT.TRACING, "TRACE_FSESSION", BTF, "trace"),
    _d("fsession.s+", PT.TRACING, "TRACE_FSESSION", BTF | SLP, "trace"),
    _d("fsession.multi+", PT.TRACING, "TRACE_FSESSION_MULTI", N, "tracing_multi"),
    _d("fsession.multi.s+", PT.TRACING, "TRACE_FSESSION_MULTI", SLP, "tracing_multi"),
    _d("fentry.multi+", PT.TRACING, "TRACE_FENTRY_MULTI", N, "tracing_multi"),
    _d("fexit.multi+", PT.TRACING, "TRACE_FEXIT_MULTI", N, "tracing_multi"),
    _d("fentry.multi.s+", PT.TRACING, "TRACE_FENTRY_MULTI", SLP, "tracing_multi"),
    _d("fexit.multi.s+", PT.TRACING, "TRACE_FEXIT_MULTI", SLP, "tracing_multi"),
    _d("freplace+", PT.EXT, None, BTF, "trace"),
    _d("lsm+", PT.LSM, "LSM_MAC", BTF, "lsm"),
    _d("lsm.s+", PT.LSM, "LSM_MAC", BTF | SLP, "lsm"),
    _d("lsm_cgroup+", PT.LSM, "LSM_CGROUP", BTF),
    _d("iter+", PT.TRACING, "TRACE_ITER", BTF, "iter"),
    _d("iter.s+", PT.TRACING, "TRACE_ITER", BTF | SLP, "iter"),
    _d("syscall", PT.SYSCALL, None, SLP),
    _d("xdp.frags/devmap", PT.XDP, "XDP_DEVMAP", FRAGS),
    _d("xdp/devmap", PT.XDP, "XDP_DEVMAP", ATT),
    _d("xdp.frags/cpumap", PT.XDP, "XDP_CPUMAP", FRAGS),
    _d("xdp/cpumap", PT.XDP, "XDP_CPUMAP", ATT),
    _d("xdp.frags", PT.XDP, "XDP", FRAGS),
    _d("xdp", PT.XDP, "XDP", OPT),
    _d("perf_event", PT.PERF_EVENT, None),
    _d("lwt_in", PT.LWT_IN, None),
    _d("lwt_out", PT.LWT_OUT, None),
    _d("lwt_xmit", PT.LWT_XMIT, None),
    _d("lwt_seg6local", PT.LWT_SEG6LOCAL, None),
    _d("sockops", PT.SOCK_OPS, "CGROUP_SOCK_OPS", OPT),
    _d("sk_skb/stream_parser", PT.SK_SKB, "SK_SKB_STREAM_PARSER", OPT),
    _d("sk_skb/stream_verdict", PT.SK_SKB, "SK_SKB_STREAM_VERDICT", OPT),
    _d("sk_skb/verdict", PT.SK_SKB, "SK_SKB_VERDICT", OPT),
    _d("sk_skb", PT.SK_SKB, None),
    _d("sk_msg", PT.SK_MSG, "SK_MSG_VERDICT", OPT),
    _d("lirc_mode2", PT.LIRC_MODE2, "LIRC_MODE2", OPT),
    _d("flow_dissector", PT.FLOW_DISSECTOR, "FLOW_DISSECTOR", OPT),
    _d("cgroup_skb/ingress", PT.CGROUP_SKB, "CGROUP_INET_INGRESS", OPT),
    _d("cgroup_skb/egress", PT.CGROUP_SKB, "CGROUP_INET_EGRESS", OPT),
    _d("cgroup/skb", PT.CGROUP_SKB, None),
    _d("cgroup/sock_create", PT.CGROUP_SOCK, "CGROUP_INET_SOCK_CREATE", ATT),
    _d("cgroup/sock_release", PT.CGROUP_SOCK, "CGROUP_INET_SOCK_RELEASE", ATT),
    _d("cgroup/sock", PT.CGROUP_SOCK, "CGROUP_INET_SOCK_CREATE", OPT),
    _d("cgroup/post_bind4", PT.CGROUP_SOCK, "CGROUP_INET4_POST_BIND", ATT),
    _d("cgroup/post_bind6", PT.CGROUP_SOCK, "CGROUP_INET6_POST_BIND", ATT),
    _d("cgroup/bind4", PT.CGROUP_SOCK_ADDR, "CGROUP_INET4_BIND", ATT),
    _d("cgroup/bind6", PT.CGROUP_SOCK_ADDR, "CGROUP_INET6_BIND", ATT),
    _d("cgroup/connect4", PT.CGROUP_SOCK_ADDR, "CGROUP_INET4_CONNECT", ATT),
    _d("cgroup/connect6", PT.CGROUP_SOCK_ADDR, "CGROUP_INET6_CONNECT", ATT),
    _d("cgroup/connect_unix", PT.CGROUP_SOCK_ADDR, "CGROUP_UNIX_CONNECT", ATT),
    _d("cgroup/sendmsg4", PT.CGROUP_SOCK_ADDR, "CGROUP_UDP4_SENDMSG", ATT),
    _d("cgroup/sendmsg6", PT.CGROUP_SOCK_ADDR, "CGROUP_UDP6_SENDMSG", ATT),
    _d("cgroup/sendmsg_unix", PT.CGROUP_SOCK_ADDR, "CGROUP_UNIX_SENDMSG", ATT),
    _d("cgroup/recvmsg4", PT.CGROUP_SOCK_ADDR, "CGROUP_UDP4_RECVMSG", ATT),
    _d("cgroup/recvmsg6", PT.CGROUP_SOCK_ADDR, "CGROUP_UDP6_RECVMSG", ATT),
    _d("cgroup/recvmsg_unix", PT.CGROUP_SOCK_ADDR, "CGROUP_UNIX_RECVMSG", ATT),
    _d("cgroup/getpeername4", PT.CGROUP_SOCK_ADDR, "CGROUP_INET4_GETPEERNAME", ATT),
    _d("cgroup/getpeername6", PT.CGROUP_SOCK_ADDR, "CGROUP_INET6_GETPEERNAME", ATT),
    _d("cgroup/getpeername_unix", PT.CGROUP_SOCK_ADDR, "CGROUP_UNIX_GETPEERNAME", ATT),
    _d("cgroup/getsockname4", PT.CGROUP_SOCK_ADDR, "CGROUP_INET4_GETSOCKNAME", ATT),
    _d("cgroup/getsockname6", PT.CGROUP_SOCK_ADDR, "CGROUP_INET6_GETSOCKNAME", ATT),
    _d("cgroup/getsockname_unix", PT.CGROUP_SOCK_ADDR, "CGROUP_UNIX_GETSOCKNAME", ATT),
    _d("cgroup/sysctl", PT.CGROUP_SYSCTL, "CGROUP_SYSCTL", ATT),
    _d("cgroup/getsockopt", PT.CGROUP_SOCKOPT, "CGROUP_GETSOCKOPT", ATT),
    _d("cgroup/setsockopt", PT.CGROUP_SOCKOPT, "CGROUP_SETSOCKOPT", ATT),
    _d("cgroup/dev", PT.CGROUP_DEVICE, "CGROUP_DEVICE", OPT),
    _d("struct_ops+", PT.STRUCT_OPS, None),
    _d("struct_ops.s+", PT.STRUCT_OPS, None, SLP),
    _d("sk_lookup", PT.SK_LOOKUP, "SK_LOOKUP", ATT),
    _d("netfilter", PT.NETFILTER, "NETFILTER"),
)


_CUSTOM: list[SectionDef] = []


@contextlib.contextmanager
def registered_sections(defs: Sequence[SectionDef]) -> Iterator[None]:
    """Extra section conventions, checked before the table while the block runs: libbpf's
    ``libbpf_register_prog_handler`` (ebpf_exporter registers ``xdp/<ifname>`` and
    ``perf_event/<attrs>`` this way)."""
    _CUSTOM[:0] = list(defs)
    try:
        yield
    finally:
        for d in defs:
            _CUSTOM.remove(d)


def find_section_def(name: str) -> SectionDef | None:
    """The first custom or table entry matching ``name`` (libbpf's order), or None."""
    for d in (*_CUSTOM, *SECTION_DEFS):
        if d.matches(name):
            return d
    return None


def is_program_section(name: str) -> bool:
    return find_section_def(name) is not None


def _attach_type(d: SectionDef, section: str) -> int:
    if d.expected_attach_type is None:
        return 0
    try:
        return int(AttachType[d.expected_attach_type])
    except KeyError:
        raise SpecError(f"section {section!r} needs attach type BPF_{d.expected_attach_type}, "
                        "which this bpfkit/kernel UAPI does not define") from None


def parse_section(name: str) -> SectionInfo:
    """Interpret a program section name the way libbpf does.

    The attach target is whatever follows the matched prefix and its ``/``:
    ``tp/syscalls/sys_enter_getpid`` -> ``syscalls/sys_enter_getpid``,
    ``uprobe//usr/bin/bash:readline`` -> ``/usr/bin/bash:readline``.
    """
    d = find_section_def(name)
    if d is None:
        raise SpecError(f"unknown program section {name!r}: it matches no libbpf SEC() "
                        "convention (e.g. 'tp/<category>/<name>', 'xdp', 'uprobe/<path>:<func>')")
    base = d.base
    if d.prefix.endswith("/"):
        target = name[len(d.prefix):]
    elif d.prefix.endswith("+"):
        target = name[len(base) + 1:] if len(name) > len(base) else ""
    else:
        # exact names such as "tc/ingress" carry no target
        target = ""
    return SectionInfo(
        section=name, definition=d, prog_type=d.prog_type,
        expected_attach_type=_attach_type(d, name),
        sleepable=bool(d.flags & SecFlag.SLEEPABLE), frags=bool(d.flags & SecFlag.XDP_FRAGS),
        attach_target=target)
