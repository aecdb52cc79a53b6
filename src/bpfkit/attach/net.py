"""Attaching networking programs: tcx, legacy tc (clsact + cls_bpf), XDP, socket filters,
sk_lookup, flow dissector, netfilter and sockmap programs.

Each function takes a loaded :class:`bpfkit.program.Program` and returns a
:class:`bpfkit.link.Link` (a kernel bpf_link when the kernel offers one) or a
:class:`bpfkit.link.CallbackLink` that undoes a legacy attachment.  Either way
``link.close()`` detaches, the link is appended to ``prog.links`` so it closes with the
program, and attachments that would outlive the process (legacy tc filters, netlink XDP)
are recorded in :mod:`bpfkit.cleanup` so :func:`bpfkit.cleanup.cleanup_stale` can undo
them after a crash, and are closed at exit or on SIGTERM.

Interfaces are given by name or index; ``netns`` (a name under /run/netns, a path, an fd
or a :class:`bpfkit.netns.NetNS`) says which network namespace they live in.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import cleanup
from .. import netlink as nlk
from .. import syscall as sc
from .._consts import BPF_F_AFTER, BPF_F_BEFORE, BPF_F_ID, BPF_F_LINK, AttachType, Cmd, ProgramType
from ..errors import (
    ENOTSUPP,
    AttachError,
    BpfkitError,
    KernelError,
    NotFound,
    PermissionDenied,
    kernel_error,
)
from ..link import CallbackLink, Link
from ..netns import NETNS_RUN_DIR, NetNS, NetnsRef, enter, netns_inode, open_netns

__all__ = ["attach_tcx", "attach_tc", "attach_xdp", "attach_socket_filter", "open_raw_socket",
           "attach_sk_lookup", "attach_flow_dissector", "attach_netfilter", "attach_sockmap",
           "interfaces", "query_tcx", "TcxQuery", "tc_filters", "xdp_state",
           "NFPROTO_IPV4", "NFPROTO_IPV6", "NF_INET_PRE_ROUTING", "NF_INET_LOCAL_IN",
           "NF_INET_FORWARD", "NF_INET_LOCAL_OUT", "NF_INET_POST_ROUTING",
           "BPF_F_NETFILTER_IP_DEFRAG", "SO_ATTACH_BPF", "SO_DETACH_BPF"]

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27
NFPROTO_IPV4, NFPROTO_IPV6 = 2, 10
NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN, NF_INET_FORWARD = 0, 1, 2
NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING = 3, 4
BPF_F_NETFILTER_IP_DEFRAG = 1

_MODULE = __name__
_NO_FEATURE = (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP)

Iface = str | int


# ------------------------------------------------------------------ small helpers


_L = TypeVar("_L", bound=Link)


def _adopt(prog: Any, link: _L) -> _L:
    """Tie the link's lifetime to the program (``Program.close`` closes its links)."""
    links = getattr(prog, "links", None)
    if isinstance(links, list):
        links.append(link)
    return link


def _prog_name(prog: Any) -> str:
    return getattr(prog, "name", "") or "prog"


def _ns_path(netns: NetnsRef) -> str | None:
    """A path that names ``netns`` persistently (for records), if it has one."""
    if isinstance(netns, NetNS):
        return netns.path
    if isinstance(netns, (str, os.PathLike)):
        s = os.fspath(netns)
        return s if "/" in s else os.path.join(NETNS_RUN_DIR, s)
    return None


def _ifname_in(idx: int, netns: NetnsRef) -> str:
    try:
        return nlk.ifname(idx, netns)
    except NotFound:
        return ""


def interfaces(skip_loopback: bool = True, *, netns: NetnsRef = None,
               up_only: bool = False) -> list[str]:
    """Interface names in ``netns``, without loopback devices unless asked."""
    return [link.name for link in nlk.links(netns)
            if not (skip_loopback and link.loopback) and not (up_only and not link.up)]


# ------------------------------------------------------------------ tcx


def _relative(before: Any, after: Any) -> tuple[int, int]:
    """(flags, relative fd/id) for mprog ordering: True = first/last, a Program, a Link,
    or an int program id."""
    if before is not None and after is not None:
        raise BpfkitError("give either before= or after=, not both")
    which, flag = (before, BPF_F_BEFORE) if before is not None else (after, BPF_F_AFTER)
    if which is None or which is False:
        return 0, 0
    if which is True:
        return flag, 0
    if isinstance(which, Link):
        return flag | BPF_F_LINK, which.fd
    if isinstance(which, int):
        return flag | BPF_F_ID, which
    if hasattr(which, "fd"):
        return flag, int(which.fd)
    raise BpfkitError(f"cannot order relative to {which!r}: give a Program, a Link, a "
                      "program id or True")


_TCX = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}


def _tcx_type(direction: str) -> AttachType:
    try:
        return _TCX[direction]
    except KeyError:
        raise BpfkitError(f"tc direction must be 'ingress' or 'egress', not {direction!r}")


def attach_tcx(prog: Any, iface: Iface, direction: str = "ingress", *, before: Any = None,
               after: Any = None, netns: NetnsRef = None, expected_revision: int = 0,
               fallback: bool = True) -> Link:
    """Attach a SCHED_CLS program with a tcx bpf_link (kernel 6.6+).

    ``before``/``after`` place it relative to another Program/Link/program id (or ``True``
    for first/last).  On a kernel without tcx (EINVAL/EOPNOTSUPP) and with no ordering
    asked, falls back to :func:`attach_tc` unless ``fallback=False``.
    """
    at = _tcx_type(direction)
    flags, rel = _relative(before, after)
    idx = nlk.ifindex(iface, netns)
    extra = struct.pack("<IIQ", rel, 0, expected_revision)
    try:
        with enter(netns):
            fd = sc.link_create(prog.fd, idx, at, flags=flags, extra=extra,
                                obj=f"tcx {direction} on {iface!r}")
    except KernelError as e:
        if fallback and e.errno in _NO_FEATURE and before is None and after is None \
                and not expected_revision:
            return attach_tc(prog, iface, direction, netns=netns)
        raise
    return _adopt(prog, Link(fd, f"tcx/{direction}:{iface}", program=prog,
                             hook=f"tcx/{direction}:{iface}"))


@dataclass
class TcxQuery:
    prog_ids: list[int]
    link_ids: list[int]
    revision: int


def query_tcx(iface: Iface, direction: str = "ingress", *, netns: NetnsRef = None,
              max_progs: int = 64) -> TcxQuery:
    """Programs and links attached through tcx (BPF_PROG_QUERY)."""
    at = _tcx_type(direction)
    idx = nlk.ifindex(iface, netns)
    progs = (ctypes.c_uint32 * max_progs)()
    links = (ctypes.c_uint32 * max_progs)()
    a = sc.ProgQueryAttr(target_fd=idx, attach_type=at, prog_ids=ctypes.addressof(progs),
                         count=max_progs, link_ids=ctypes.addressof(links))
    with enter(netns):
        sc.bpf(Cmd.PROG_QUERY, a, obj=f"tcx {direction} on {iface!r}")
    n = a.count
    return TcxQuery(list(progs[:n]), [i for i in links[:n] if i], int(a.revision))


# ------------------------------------------------------------------ legacy tc


def _ns_ident(nsfd: int) -> dict[str, int]:
    from ..netns import netns_identity
    return netns_identity(nsfd)


def _qdisc_records(ident: dict[str, Any], idx: int) -> list[cleanup.Record]:
    """Records of clsact qdiscs bpfkit created on this device (any process)."""
    return [r for r in cleanup.records() if r.kind == "tc-qdisc"
            and r.data.get("netns") == ident and r.data.get("ifindex") == idx]


def _ours(f: nlk.TcFilter, data: dict[str, Any]) -> bool:
    """Whether filter ``f`` is the one the record describes: same name (which carries the
    pid and start time of its bpfkit process) and same program; prio and handle too once
    confirmed."""
    if f.name != data["tag"]:
        return False
    if data.get("prog_id") and f.prog_id and f.prog_id != data["prog_id"]:
        return False
    if "prio" in data and (f.prio != data["prio"] or f.handle != data["handle"]):
        return False
    return True


def _tc_remove(nl: nlk.Netlink, data: dict[str, Any]) -> None:
    """Delete exactly the filter ``data`` describes (if it is still ours), then the clsact
    qdisc if bpfkit created it and no filter is left on the device."""
    idx = data["ifindex"]
    try:
        present = nl.filters(idx, parent=data["parent"])
    except NotFound:
        present = []  # the device is gone, and the filter with it
    for f in present:
        if _ours(f, data):
            with contextlib.suppress(NotFound):
                nl.filter_del(idx, prio=f.prio, handle=f.handle, protocol=f.protocol,
                              parent=data["parent"])
    _maybe_drop_qdisc(nl, data["netns"], idx)


def _maybe_drop_qdisc(nl: nlk.Netlink, ident: dict[str, Any], idx: int) -> None:
    recs = _qdisc_records(ident, idx)
    if not recs:
        return
    try:
        if nl.filters(idx):
            return
        nl.clsact_del(idx)
    except NotFound:
        pass  # qdisc or device already gone
    for r in recs:
        cleanup.forget(r.token)


def _tag(prog: Any) -> str:
    """The cls_bpf filter name: program, pid and process start time, so that a filter of a
    dead process is never taken for one of a new process that reused its pid."""
    return f"bpfkit:{_prog_name(prog)}:{os.getpid()}:{cleanup.process_start_time() or 0}"


def attach_tc(prog: Any, iface: Iface, direction: str = "ingress", *, prio: int = 0,
              handle: int = 0, netns: NetnsRef = None, replace: bool = False) -> CallbackLink:
    """Attach a SCHED_CLS program as a direct-action cls_bpf filter under clsact.

    The clsact qdisc is added if missing (and removed again when bpfkit's last filter on the
    device goes).  The filter is named ``bpfkit:<prog name>:<pid>:<start>``; closing the
    returned link deletes exactly that filter (its prio and handle), nothing else.  Both are
    recorded as intents before they are made, so ``bpfkit cleanup`` finds them whenever
    the process dies.
    """
    parent = nlk.tc_parent(direction)
    nsfd = open_netns(netns)
    try:
        ident = _ns_ident(nsfd)
        prog_id = sc.obj_info(prog.fd, sc.ProgInfo()).id
        with nlk.Netlink(nsfd) as nl:
            idx = nl.ifindex(iface)
            name = nl.ifname(idx)
            base = {"netns": ident, "netns_path": _ns_path(netns), "ifindex": idx,
                    "ifname": name}
            if not nl.has_clsact(idx):
                # Intent first: a kill right after the kernel made the qdisc still leaves
                # a record.  A qdisc that was already there is never recorded, so never ours.
                qtoken = cleanup.record("tc-qdisc", dict(base), module=_MODULE,
                                        state="intent")
                try:
                    created = nl.clsact_add(idx)
                except BaseException:
                    cleanup.forget(qtoken)
                    raise
                if created:
                    cleanup.confirm(qtoken)
                else:
                    cleanup.forget(qtoken)  # someone else made it meanwhile: not ours
            tag = _tag(prog)
            data = dict(base, direction=direction, parent=parent, tag=tag, prog_id=prog_id)
            token = cleanup.record("tc", data, module=_MODULE, state="intent")
            try:
                f = nl.filter_add_bpf(idx, prog.fd, direction, name=tag, prio=prio,
                                      handle=handle, replace=replace)
            except BaseException:
                cleanup.forget(token)  # nothing was added (the kernel said no)
                with contextlib.suppress(KernelError):
                    _maybe_drop_qdisc(nl, ident, idx)
                raise
        data.update(prio=f.prio, handle=f.handle, protocol=f.protocol)
        cleanup.confirm(token, data)
    except BaseException:
        os.close(nsfd)
        raise

    link: CallbackLink

    def detach() -> None:
        try:
            with nlk.Netlink(nsfd) as nl:
                _tc_remove(nl, data)
            cleanup.forget(token)
        finally:
            os.close(nsfd)
            cleanup.untrack(link)

    hook = f"tc/{direction}:{name}"
    link = CallbackLink(detach, tag, program=prog, hook=hook)
    link.filter = f  # type: ignore[attr-defined]
    cleanup.track(link)
    return _adopt(prog, link)


def tc_filters(iface: Iface, direction: str | None = None, *,
               netns: NetnsRef = None) -> list[nlk.TcFilter]:
    """The tc filters under clsact on ``iface`` (both directions when None)."""
    with nlk.Netlink(netns) as nl:
        return nl.filters(iface, direction)


# ------------------------------------------------------------------ XDP

_XDP_MODES = {"auto": 0, "generic": nlk.XDP_FLAGS_SKB_MODE, "skb": nlk.XDP_FLAGS_SKB_MODE,
              "driver": nlk.XDP_FLAGS_DRV_MODE, "native": nlk.XDP_FLAGS_DRV_MODE,
              "offload": nlk.XDP_FLAGS_HW_MODE, "hw": nlk.XDP_FLAGS_HW_MODE}
_MODE_FLAG = {"generic": nlk.XDP_FLAGS_SKB_MODE, "driver": nlk.XDP_FLAGS_DRV_MODE,
              "offload": nlk.XDP_FLAGS_HW_MODE}


def xdp_state(iface: Iface, *, netns: NetnsRef = None) -> nlk.XdpState:
    """What XDP program (per mode) is attached to ``iface``."""
    with nlk.Netlink(netns) as nl:
        return nl.xdp_query(iface)


def attach_xdp(prog: Any, iface: Iface, *, mode: str = "auto", replace: Any = False,
               netns: NetnsRef = None) -> Link:
    """Attach an XDP program: a BPF_XDP bpf_link first, IFLA_XDP over netlink as fallback.

    ``mode``: ``auto`` (driver if it supports XDP, else generic), ``generic``, ``driver``
    or ``offload``.  ``replace=True`` replaces a program attached over netlink (links
    cannot); ``replace=<Program>`` replaces only if that program is the attached one.
    """
    try:
        flags = _XDP_MODES[mode]
    except KeyError:
        raise BpfkitError(f"unknown XDP mode {mode!r}: use auto, generic, driver or offload")
    idx = nlk.ifindex(iface, netns)
    if replace is False:
        try:
            with enter(netns):
                fd = sc.link_create(prog.fd, idx, AttachType.XDP, flags=flags,
                                    obj=f"XDP ({mode}) on {iface!r}")
            return _adopt(prog, Link(fd, f"xdp:{iface}", program=prog, hook=f"xdp:{iface}"))
        except KernelError as e:
            if e.errno == errno.EBUSY:
                raise type(e)(e.command, e.errno, obj=e.obj, detail=e.detail,
                              hint="an XDP program is already attached in this mode; pass "
                                   "replace=True to replace one attached over netlink")
            if e.errno not in _NO_FEATURE:
                raise
    return _attach_xdp_netlink(prog, idx, flags, replace, netns, iface)


def _xdp_detach(nl: nlk.Netlink, idx: int, mode_flag: int, prog_fd: int) -> None:
    """Remove the XDP program of one mode only if it is still ``prog_fd``'s program."""
    try:
        nl.xdp_set(idx, -1, mode_flag, expected_fd=prog_fd)
    except KernelError as e:
        if e.errno in (errno.EEXIST, errno.ENODEV, errno.ENOENT):
            return  # replaced by someone else, or the device is gone
        raise


def _attach_xdp_netlink(prog: Any, idx: int, flags: int, replace: Any, netns: NetnsRef,
                        iface: Iface) -> CallbackLink:
    nsfd = open_netns(netns)
    prog_fd = os.dup(prog.fd)
    try:
        prog_id = sc.obj_info(prog_fd, sc.ProgInfo()).id
        data = {"netns": _ns_ident(nsfd), "netns_path": _ns_path(netns), "ifindex": idx,
                "ifname": _ifname_in(idx, nsfd), "mode_flag": flags, "prog_id": prog_id}
        # Intent first: the record names the program, so cleanup removes only that one.
        token = cleanup.record("xdp", data, module=_MODULE, state="intent")
        try:
            with nlk.Netlink(nsfd) as nl:
                expected = None
                nl_flags = flags
                if replace is False:
                    nl_flags |= nlk.XDP_FLAGS_UPDATE_IF_NOEXIST
                elif replace is not True:
                    expected = int(replace.fd)
                nl.xdp_set(idx, prog_fd, nl_flags, expected_fd=expected)
                modes = [m for m, i in nl.xdp_query(idx).ids().items() if i == prog_id]
                mode_flag = _MODE_FLAG.get(modes[0], flags) if modes else flags
                if not modes:
                    raise AttachError(f"XDP program {_prog_name(prog)!r} was set on "
                                      f"interface {iface!r} but is not attached there")
        except BaseException:
            cleanup.forget(token)
            raise
        data["mode_flag"] = mode_flag
        cleanup.confirm(token, data)
    except BaseException:
        os.close(nsfd)
        os.close(prog_fd)
        raise

    link: CallbackLink

    def detach() -> None:
        try:
            with nlk.Netlink(nsfd) as nl:
                _xdp_detach(nl, idx, mode_flag, prog_fd)
            cleanup.forget(token)
        finally:
            os.close(nsfd)
            os.close(prog_fd)
            cleanup.untrack(link)

    link = CallbackLink(detach, f"xdp:{iface}", program=prog, hook=f"xdp(netlink):{iface}")
    cleanup.track(link)
    return _adopt(prog, link)


# ------------------------------------------------------------------ stale cleaners


def _reach(data: dict[str, Any]) -> int | None:
    """An fd on the record's netns if it still exists, else None (it died, and with it
    every attachment in it).  The namespace is matched by its cookie (never reused); where
    the kernel has none, by inode + device, and the device the record names must still
    carry the recorded name at the recorded index (a reused inode number is not enough)."""
    from ..netns import find_netns
    ident = data.get("netns")
    if not isinstance(ident, dict) or "ino" not in ident:
        return None  # a record of an older bpfkit without a reliable identity: not provably ours
    fd = find_netns(ident, data.get("netns_path"))
    if fd is None or "cookie" in ident:
        return fd
    if data.get("ifname") and _ifname_in(int(data["ifindex"]), fd) != data["ifname"]:
        os.close(fd)
        return None
    return fd


def _clean_tc(rec: cleanup.Record) -> None:
    fd = _reach(rec.data)
    if fd is None:
        return
    try:
        with nlk.Netlink(fd) as nl:
            _tc_remove(nl, rec.data)
    finally:
        os.close(fd)


def _clean_qdisc(rec: cleanup.Record) -> None:
    fd = _reach(rec.data)
    if fd is None:
        return
    try:
        with nlk.Netlink(fd) as nl:
            idx = rec.data["ifindex"]
            try:
                if nl.filters(idx):
                    raise BpfkitError("filters remain on the qdisc: keep it for now")
                nl.clsact_del(idx)
            except NotFound:
                pass
    finally:
        os.close(fd)


def _clean_xdp(rec: cleanup.Record) -> None:
    """Detach the recorded program, in whichever mode it is attached, and nothing else: a
    program with another id on the device is someone else's."""
    fd = _reach(rec.data)
    if fd is None:
        return
    try:
        try:
            prog_fd = sc.get_fd_by_id(Cmd.PROG_GET_FD_BY_ID, rec.data["prog_id"])
        except NotFound:
            return  # the program is gone, so it is attached nowhere
        try:
            with nlk.Netlink(fd) as nl:
                try:
                    ids = nl.xdp_query(rec.data["ifindex"]).ids()
                except NotFound:
                    return  # the device is gone
                for mode, pid in ids.items():
                    if pid == rec.data["prog_id"] and mode in _MODE_FLAG:
                        _xdp_detach(nl, rec.data["ifindex"], _MODE_FLAG[mode], prog_fd)
        finally:
            os.close(prog_fd)
    finally:
        os.close(fd)


cleanup.register_cleaner("tc", _clean_tc)
cleanup.register_cleaner("tc-qdisc", _clean_qdisc, order=10)
cleanup.register_cleaner("xdp", _clean_xdp)


# ------------------------------------------------------------------ sockets


def _sockopt_int(fd: int, opt: int, value: int, what: str) -> None:
    v = ctypes.c_int(value)
    if sc.libc.setsockopt(fd, socket.SOL_SOCKET, opt, ctypes.byref(v), ctypes.sizeof(v)) != 0:
        raise kernel_error(what, ctypes.get_errno(), obj=f"socket fd {fd}")


def attach_socket_filter(prog: Any, sock: socket.socket | int) -> CallbackLink:
    """SO_ATTACH_BPF a SOCKET_FILTER program to a socket (object or fd).

    Closing the link detaches it (SO_DETACH_BPF), unless the socket is gone or its fd now
    names another file.
    """
    fd = sock if isinstance(sock, int) else sock.fileno()
    if fd < 0:
        raise BpfkitError("the socket is closed")
    _sockopt_int(fd, SO_ATTACH_BPF, prog.fd, "setsockopt(SO_ATTACH_BPF)")
    st = os.fstat(fd)
    ident = (st.st_dev, st.st_ino)

    def detach() -> None:
        cur = sock.fileno() if isinstance(sock, socket.socket) else fd
        if cur < 0:
            return
        try:
            s2 = os.fstat(cur)
        except OSError:
            return
        if (s2.st_dev, s2.st_ino) != ident:
            return
        try:
            _sockopt_int(cur, SO_DETACH_BPF, 0, "setsockopt(SO_DETACH_BPF)")
        except NotFound:
            pass  # no filter any more

    return _adopt(prog, CallbackLink(detach, f"socket:{fd}", program=prog,
                                     hook=f"socket filter on fd {fd}"))


def packet_socket(protocol: int = 0) -> socket.socket:
    """``socket(AF_PACKET, SOCK_RAW)``; a PermissionDenied that names CAP_NET_RAW (the
    capability it needs, which CAP_BPF does not imply) rather than a bare EPERM."""
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, protocol)
    except PermissionError as e:
        raise PermissionDenied("socket(AF_PACKET, SOCK_RAW)", e.errno or errno.EPERM,
                               obj="a raw packet socket",
                               hint="raw packet sockets need CAP_NET_RAW: run as root or "
                                    "grant CAP_NET_RAW") from None


def open_raw_socket(iface: Iface, *, netns: NetnsRef = None, protocol: int = nlk.ETH_P_ALL,
                    bind: bool = True) -> socket.socket:
    """An AF_PACKET raw socket bound to ``iface``, for socket filter programs.

    With ``bind=False`` the socket receives nothing until bound: attach the filter first,
    then ``sock.bind((name, protocol))``, so no unfiltered packet is queued.
    """
    with enter(netns):
        idx = nlk.ifindex(iface)
        name = nlk.ifname(idx)
        s = packet_socket(socket.htons(protocol) if bind else 0)
        try:
            if bind:
                s.bind((name, protocol))
        except BaseException:
            s.close()
            raise
    return s


# ------------------------------------------------------------------ netns links


def _netns_link(prog: Any, netns: NetnsRef, at: AttachType, what: str) -> Link:
    nsfd = open_netns(netns)
    try:
        fd = sc.link_create(prog.fd, nsfd, at, obj=f"{what} in netns {netns_inode(nsfd)}")
    finally:
        os.close(nsfd)
    return _adopt(prog, Link(fd, what, program=prog, hook=what))


def attach_sk_lookup(prog: Any, netns: NetnsRef = None) -> Link:
    """Attach an SK_LOOKUP program to a netns (the caller thread's by default)."""
    return _netns_link(prog, netns, AttachType.SK_LOOKUP, "sk_lookup")


def attach_flow_dissector(prog: Any, netns: NetnsRef = None) -> Link:
    """Attach a FLOW_DISSECTOR program to a netns (the caller thread's by default)."""
    return _netns_link(prog, netns, AttachType.FLOW_DISSECTOR, "flow_dissector")


def attach_netfilter(prog: Any, pf: int = NFPROTO_IPV4, hooknum: int = NF_INET_LOCAL_IN,
                     priority: int = 0, flags: int = 0, *, netns: NetnsRef = None) -> Link:
    """Attach a NETFILTER program at a netfilter hook (BPF_LINK_CREATE(BPF_NETFILTER)).

    The hook is in ``netns`` (the caller thread's by default).  ``priority`` orders it among
    other hooks (INT_MIN/INT_MAX are reserved); ``flags`` may hold BPF_F_NETFILTER_IP_DEFRAG.
    """
    extra = struct.pack("<IIiI", pf, hooknum, priority, flags)
    what = f"netfilter pf {pf} hook {hooknum} prio {priority}"
    with enter(netns):
        fd = sc.link_create(prog.fd, 0, AttachType.NETFILTER, extra=extra, obj=what)
    return _adopt(prog, Link(fd, what, program=prog, hook=what))


_SOCKMAP_DEFAULT = {ProgramType.SK_MSG: AttachType.SK_MSG_VERDICT,
                    ProgramType.SK_SKB: AttachType.SK_SKB_STREAM_VERDICT}


def attach_sockmap(prog: Any, map_: Any, attach_type: int | None = None) -> Link:
    """Attach an SK_MSG/SK_SKB program to a sockmap/sockhash.

    A BPF_LINK_TYPE_SOCKMAP link when the kernel has it (6.10+), else BPF_PROG_ATTACH on the
    map fd with a CallbackLink that detaches it.  ``attach_type`` defaults to the program's
    expected attach type, or the verdict type of its program type.
    """
    if attach_type is None:
        attach_type = getattr(prog, "expected_attach_type", 0) or \
            _SOCKMAP_DEFAULT.get(getattr(prog, "type", None))  # type: ignore[arg-type]
        if attach_type is None:
            raise BpfkitError("give attach_type= for this sockmap program")
    map_fd = map_ if isinstance(map_, int) else map_.fd
    try:
        at_name = AttachType(attach_type).name
    except ValueError:
        at_name = str(attach_type)
    what = f"sockmap {at_name}"
    try:
        fd = sc.link_create(prog.fd, map_fd, attach_type, obj=what)
        return _adopt(prog, Link(fd, what, program=prog, hook=what))
    except KernelError as e:
        if e.errno not in _NO_FEATURE:
            raise
    sc.prog_attach(map_fd, prog.fd, attach_type, obj=what)
    mfd, pfd = os.dup(map_fd), os.dup(prog.fd)

    def detach() -> None:
        try:
            sc.prog_detach(mfd, pfd, attach_type, obj=what)
        finally:
            os.close(mfd)
            os.close(pfd)

    return _adopt(prog, CallbackLink(detach, what, program=prog, hook=what))
