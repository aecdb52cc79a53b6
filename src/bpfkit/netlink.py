"""A minimal rtnetlink (NETLINK_ROUTE) client: links, addresses, clsact/cls_bpf, XDP.

Why our own: bpfkit is standard-library only, and iproute2 on many systems is older than
the kernel (it may not know a flag we need).  Only what attaching BPF programs and the test
fixtures need is here.  Errors become :mod:`bpfkit.errors` exceptions carrying the kernel's
extended-ack message (e.g. "Exclusivity flag on, cannot modify") when it sends one.

A :class:`Netlink` socket lives in the netns it was created in; pass ``netns=`` to talk to
another namespace without switching the caller's thread.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import BpfkitError, KernelError, NotFound, ParseError, kernel_error
from .netns import NetnsRef, enter

__all__ = ["Netlink", "NetlinkMessage", "LinkAttrs", "XdpState", "Address", "Qdisc",
           "TcFilter", "ifindex", "ifname", "links", "tc_parent", "attr", "nested", "parse_attrs",
           "XDP_FLAGS_UPDATE_IF_NOEXIST", "XDP_FLAGS_SKB_MODE", "XDP_FLAGS_DRV_MODE",
           "XDP_FLAGS_HW_MODE", "XDP_FLAGS_REPLACE", "XDP_FLAGS_MODES"]

# ------------------------------------------------------------------ netlink protocol
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: the original payload was left out
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46
_RTM_NAMES = {v: k for k, v in globals().items() if k.startswith("RTM_")}

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBi")
_TCMSG = struct.Struct("=BxxxiIII")
_NLA = struct.Struct("=HH")

# ------------------------------------------------------------------ rtnetlink attributes
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_LINKINFO, IFLA_NET_NS_PID, IFLA_NET_NS_FD, IFLA_XDP = 18, 19, 28, 43
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_XDP_FD, IFLA_XDP_ATTACHED, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID = 1, 2, 3, 4
IFLA_XDP_DRV_PROG_ID, IFLA_XDP_SKB_PROG_ID, IFLA_XDP_HW_PROG_ID = 5, 6, 7
IFLA_XDP_EXPECTED_FD = 8
XDP_ATTACHED_NONE, XDP_ATTACHED_DRV, XDP_ATTACHED_SKB = 0, 1, 2
XDP_ATTACHED_HW, XDP_ATTACHED_MULTI = 3, 4
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4
XDP_FLAGS_MODES = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE

IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RT_SCOPE_UNIVERSE = 0

TCA_KIND, TCA_OPTIONS, TCA_CHAIN = 1, 2, 11
TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS, TCA_BPF_FLAGS_GEN = 6, 7, 8, 9
TCA_BPF_TAG, TCA_BPF_ID = 10, 11
TCA_BPF_FLAG_ACT_DIRECT = 1
TCA_CLS_FLAGS_SKIP_HW, TCA_CLS_FLAGS_SKIP_SW = 1, 2
TC_H_CLSACT = 0xFFFFFFF1
TC_H_MIN_INGRESS, TC_H_MIN_EGRESS = 0xFFF2, 0xFFF3
CLSACT_HANDLE = 0xFFFF0000
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def tc_parent(direction: str) -> int:
    """The clsact parent handle of ``"ingress"`` or ``"egress"`` filters."""
    if direction == "ingress":
        return (TC_H_CLSACT & 0xFFFF0000) | TC_H_MIN_INGRESS
    if direction == "egress":
        return (TC_H_CLSACT & 0xFFFF0000) | TC_H_MIN_EGRESS
    raise BpfkitError(f"tc direction must be 'ingress' or 'egress', not {direction!r}")


# ------------------------------------------------------------------ attribute codec


def attr(kind: int, data: bytes | str | int, fmt: str = "=I") -> bytes:
    """One netlink attribute, padded to 4 bytes (str -> NUL-terminated, int -> ``fmt``)."""
    if isinstance(data, str):
        payload = data.encode() + b"\0"
    elif isinstance(data, int):
        payload = struct.pack(fmt, data)
    else:
        payload = data
    n = _NLA.size + len(payload)
    return _NLA.pack(n, kind) + payload + b"\0" * (-n % 4)


def nested(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))



def iter_attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """(type, payload) pairs of an attribute stream; raises ParseError if cut."""
    end = len(data)
    while offset + _NLA.size <= end:
        n, kind = _NLA.unpack_from(data, offset)
        if n < _NLA.size or offset + n > end:
            raise ParseError(f"malformed netlink attribute at offset {offset} (len {n})")
        yield kind & NLA_TYPE_MASK, data[offset + _NLA.size:offset + n]
        offset += (n + 3) & ~3


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes by type (the last one wins, as in the kernel's own parsing)."""
    return dict(iter_attrs(data, offset))


def _u32(b: bytes | None, default: int = 0) -> int:
    return struct.unpack_from("=I", b)[0] if b and len(b) >= 4 else default


def _str(b: bytes | None) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace") if b else ""


# ------------------------------------------------------------------ results


@dataclass
class NetlinkMessage:
    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes


@dataclass
class XdpState:
    """What IFLA_XDP says is attached to a device."""

    attached: int = XDP_ATTACHED_NONE
    prog_id: int = 0
    drv_prog_id: int = 0
    skb_prog_id: int = 0
    hw_prog_id: int = 0

    def ids(self) -> dict[str, int]:
        """Program id per mode (``generic``/``driver``/``offload``) that has one."""
        out = {}
        if self.attached == XDP_ATTACHED_MULTI:
            pairs = (("generic", self.skb_prog_id), ("driver", self.drv_prog_id),
                     ("offload", self.hw_prog_id))
            out = {k: v for k, v in pairs if v}
        elif self.attached:
            mode = {XDP_ATTACHED_DRV: "driver", XDP_ATTACHED_SKB: "generic",
                    XDP_ATTACHED_HW: "offload"}.get(self.attached, "unknown")
            out[mode] = self.prog_id
        return out


@dataclass
class LinkAttrs:
    index: int
    name: str
    flags: int
    type: int
    mtu: int = 0
    kind: str = ""
    xdp: XdpState = field(default_factory=XdpState)

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def loopback(self) -> bool:
        return bool(self.flags & IFF_LOOPBACK)


@dataclass
class Address:
    index: int
    family: int
    address: str
    prefixlen: int


@dataclass
class Qdisc:
    ifindex: int
    handle: int
    parent: int
    kind: str


@dataclass
class TcFilter:
    """A tc filter; for cls_bpf ``name``/``prog_id``/``direct_action`` are filled."""

    ifindex: int
    parent: int
    prio: int
    protocol: int
    handle: int
    kind: str
    name: str = ""
    prog_id: int = 0
    direct_action: bool = False
    chain: int = 0


# ------------------------------------------------------------------ the socket


class Netlink:
    """One NETLINK_ROUTE socket (in ``netns`` if given); a context manager."""

    _seq = itertools.count(int.from_bytes(os.urandom(2), "little"))

    def __init__(self, netns: NetnsRef = None) -> None:
        with enter(netns):
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                              NETLINK_ROUTE)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                try:
                    s.setsockopt(SOL_NETLINK, opt, 1)
                except OSError:
                    pass  # old kernel: plain errors only
            s.bind((0, 0))
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.netns = netns

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- transport

    def request(self, msg_type: int, payload: bytes, flags: int = 0, *,
                obj: str | None = None, hint: str | None = None) -> list[NetlinkMessage]:
        """Send one request and collect its replies.

        Without NLM_F_DUMP an ACK is requested and awaited; with it, messages are read until
        NLMSG_DONE.  Returns the data messages (echoes, dump entries, GET replies).
        """
        dump = (flags & NLM_F_DUMP) == NLM_F_DUMP
        for _attempt in range(5):
            seq = next(self._seq) & 0xFFFFFFFF
            fl = NLM_F_REQUEST | flags | (0 if dump else NLM_F_ACK)
            self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, fl, seq, 0)
                           + payload)
            out, interrupted = self._collect(seq, msg_type, dump, obj, hint)
            if not (dump and interrupted):
                return out
        return out

    def _collect(self, seq: int, msg_type: int, dump: bool, obj: str | None,
                 hint: str | None) -> tuple[list[NetlinkMessage], bool]:
        out: list[NetlinkMessage] = []
        interrupted = False
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                n, t, fl, s, pid = _NLMSGHDR.unpack_from(data, off)
                if n < _NLMSGHDR.size or off + n > len(data):
                    raise BpfkitError(f"malformed netlink message (len {n}) from the kernel")
                body = data[off + _NLMSGHDR.size:off + n]
                off += (n + 3) & ~3
                if s != seq:
                    continue  # a late reply to an earlier request
                if fl & NLM_F_DUMP_INTR:
                    interrupted = True
                if t == NLMSG_ERROR:
                    self._check_error(body, fl, msg_type, obj, hint)
                    return out, interrupted  # error 0 == ACK
                if t == NLMSG_DONE:
                    if dump and len(body) >= 4:
                        err = struct.unpack_from("=i", body)[0]
                        if err < 0:
                            raise self._error(-err, msg_type, obj, hint,
                                              _extack(body, 4, fl))
                    return out, interrupted
                if t in (NLMSG_NOOP, NLMSG_OVERRUN):
                    continue
                out.append(NetlinkMessage(t, fl, s, pid, body))

    def _check_error(self, body: bytes, flags: int, msg_type: int, obj: str | None,
                     hint: str | None) -> None:
        if len(body) < 4:
            raise BpfkitError("truncated NLMSG_ERROR from the kernel")
        err = struct.unpack_from("=i", body)[0]
        if err == 0:
            return
        # After the errno: the request's header (and its payload unless capped), then TLVs.
        off = 4
        if len(body) >= off + _NLMSGHDR.size:
            orig_len = _NLMSGHDR.unpack_from(body, off)[0]
            off += _NLMSGHDR.size if flags & NLM_F_CAPPED else (orig_len + 3) & ~3
        raise self._error(-err, msg_type, obj, hint, _extack(body, off, flags))

    @staticmethod
    def _error(err: int, msg_type: int, obj: str | None, hint: str | None,
               detail: str | None) -> KernelError:
        cmd = _RTM_NAMES.get(msg_type, f"netlink message {msg_type}")
        if err == errno.ENODEV:
            return NotFound(cmd, err, obj=obj, hint=hint or "no such network interface "
                            "(in this network namespace)", detail=detail)
        return kernel_error(cmd, err, obj=obj, hint=hint, detail=detail)

    # -------------------------------------------------------------- links

    def links(self) -> list[LinkAttrs]:
        msgs = self.request(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
                            NLM_F_DUMP)
        return [_parse_link(m.payload) for m in msgs if m.type == RTM_NEWLINK]

    def link(self, ref: str | int) -> LinkAttrs:
        """One interface by name or index (RTM_GETLINK)."""
        if isinstance(ref, int):
            body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, ref, 0, 0)
            obj = f"interface index {ref}"
        else:
            body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, ref)
            obj = f"interface {ref!r}"
        for m in self.request(RTM_GETLINK, body, obj=obj):
            if m.type == RTM_NEWLINK:
                return _parse_link(m.payload)
        raise NotFound("RTM_GETLINK", errno.ENODEV, obj=obj)

    def ifindex(self, name: str | int) -> int:
        return name if isinstance(name, int) else self.link(name).index

    def ifname(self, index: int) -> str:
        return self.link(index).name

    def veth_add(self, name: str, peer: str, *, peer_netns_fd: int | None = None) -> None:
        """Create a veth pair; the peer end may go straight into another netns (by fd)."""
        peer_attrs = attr(IFLA_IFNAME, peer)
        if peer_netns_fd is not None:
            peer_attrs += attr(IFLA_NET_NS_FD, peer_netns_fd)
        info = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, "veth"),
                      nested(IFLA_INFO_DATA, nested(
                          VETH_INFO_PEER, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                          + peer_attrs)))
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, name) + info
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL,
                     obj=f"veth {name!r}/{peer!r}")

    def link_del(self, index: int | str) -> None:
        idx = self.ifindex(index)
        self.request(RTM_DELLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, idx, 0, 0),
                     obj=f"interface {index!r}")

    def link_set(self, index: int | str, *, up: bool | None = None,
                 netns_fd: int | None = None, mtu: int | None = None) -> None:
        """Bring an interface up/down, change its MTU or move it to another netns (fd)."""
        idx = self.ifindex(index)
        flags = change = 0
        if up is not None:
            change = IFF_UP
            flags = IFF_UP if up else 0
        extra = b""
        if netns_fd is not None:
            extra += attr(IFLA_NET_NS_FD, netns_fd)
        if mtu is not None:
            extra += attr(IFLA_MTU, mtu)
        self.request(RTM_SETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, idx, flags, change)
                     + extra, obj=f"interface {index!r}")

    # -------------------------------------------------------------- addresses

    def addr_add(self, index: int | str, address: str) -> None:
        """Add ``"10.0.0.1/24"`` (or IPv6, with DAD off so it is usable at once)."""
        idx = self.ifindex(index)
        iface = ipaddress.ip_interface(address)
        fam = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        raw = iface.ip.packed
        body = _IFADDRMSG.pack(fam, iface.network.prefixlen,
                               IFA_F_NODAD if fam == socket.AF_INET6 else 0,
                               RT_SCOPE_UNIVERSE, idx)
        body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL,
                     obj=f"address {address} on {index!r}")

    def addrs(self, index: int | str | None = None) -> list[Address]:
        idx = None if index is None else self.ifindex(index)
        msgs = self.request(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0),
                            NLM_F_DUMP)
        out = []
        for m in msgs:
            if m.type != RTM_NEWADDR or len(m.payload) < _IFADDRMSG.size:
                continue
            fam, plen, _fl, _scope, i = _IFADDRMSG.unpack_from(m.payload)
            if idx is not None and i != idx:
                continue
            a = parse_attrs(m.payload, _IFADDRMSG.size)
            raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
            if not raw:
                continue
            out.append(Address(i, fam, str(ipaddress.ip_address(raw)), plen))
        return out

    # -------------------------------------------------------------- qdiscs

    def qdiscs(self, index: int | str | None = None) -> list[Qdisc]:
        idx = 0 if index is None else self.ifindex(index)
        msgs = self.request(RTM_GETQDISC, _TCMSG.pack(socket.AF_UNSPEC, idx, 0, 0, 0),
                            NLM_F_DUMP)
        out = []
        for m in msgs:
            if m.type != RTM_NEWQDISC or len(m.payload) < _TCMSG.size:
                continue
            _f, i, handle, parent, _info = _TCMSG.unpack_from(m.payload)
            if idx and i != idx:
                continue
            a = parse_attrs(m.payload, _TCMSG.size)
            out.append(Qdisc(i, handle, parent, _str(a.get(TCA_KIND))))
        return out

    def has_clsact(self, index: int | str) -> bool:
        return any(q.kind == "clsact" for q in self.qdiscs(index))

    def clsact_add(self, index: int | str) -> bool:
        """Add the clsact qdisc; True if we created it, False if it was already there."""
        idx = self.ifindex(index)
        body = _TCMSG.pack(socket.AF_UNSPEC, idx, CLSACT_HANDLE, TC_H_CLSACT, 0)
        try:
            self.request(RTM_NEWQDISC, body + attr(TCA_KIND, "clsact"),
                         NLM_F_CREATE | NLM_F_EXCL, obj=f"clsact qdisc on {index!r}")
        except KernelError as e:
            if e.errno == errno.EEXIST and self.has_clsact(idx):
                return False
            raise
        return True

    def clsact_del(self, index: int | str) -> None:
        idx = self.ifindex(index)
        body = _TCMSG.pack(socket.AF_UNSPEC, idx, CLSACT_HANDLE, TC_H_CLSACT, 0)
        self.request(RTM_DELQDISC, body + attr(TCA_KIND, "clsact"),
                     obj=f"clsact qdisc on {index!r}")

    # -------------------------------------------------------------- filters

    def filter_add_bpf(self, index: int | str, prog_fd: int, direction: str = "ingress", *,
                       name: str = "", prio: int = 0, handle: int = 0,
                       protocol: int = ETH_P_ALL, direct_action: bool = True,
                       skip_sw: bool = False, skip_hw: bool = False, replace: bool = False,
                       parent: int | None = None) -> TcFilter:
        """Add a cls_bpf filter; returns it with the prio/handle the kernel chose.

        ``replace`` swaps the program of an existing filter at the same prio/handle
        (NLM_F_REPLACE) instead of failing with EEXIST.
        """
        idx = self.ifindex(index)
        par = tc_parent(direction) if parent is None else parent
        info = ((prio & 0xFFFF) << 16) | socket.htons(protocol)
        opts = attr(TCA_BPF_FD, prog_fd)
        if name:
            opts += attr(TCA_BPF_NAME, name)
        if direct_action:
            opts += attr(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)
        gen = (TCA_CLS_FLAGS_SKIP_SW if skip_sw else 0) | (TCA_CLS_FLAGS_SKIP_HW if skip_hw else 0)
        if gen:
            opts += attr(TCA_BPF_FLAGS_GEN, gen)
        body = (_TCMSG.pack(socket.AF_UNSPEC, idx, handle, par, info) + attr(TCA_KIND, "bpf")
                + nested(TCA_OPTIONS, opts))
        flags = NLM_F_CREATE | NLM_F_ECHO | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        msgs = self.request(RTM_NEWTFILTER, body, flags,
                            obj=f"bpf filter {name!r} on {index!r} {direction}",
                            hint="is there a clsact qdisc on the device, and is the program "
                                 "of type SCHED_CLS?")
        for m in msgs:
            if m.type == RTM_NEWTFILTER:
                f = _parse_filter(m.payload)
                if f is not None and f.handle:
                    return f
        # No echo (very old kernel): find it by name.
        for f in self.filters(idx, parent=par):
            if f.name == name and (not prio or f.prio == prio) and (not handle or
                                                                     f.handle == handle):
                return f
        raise BpfkitError(f"filter {name!r} was added on {index!r} but cannot be found")

    def filters(self, index: int | str, direction: str | None = None, *,
                parent: int | None = None) -> list[TcFilter]:
        """Filters (with a handle) under a clsact direction, or both when ``direction`` is None."""
        idx = self.ifindex(index)
        if parent is None and direction is None:
            return self.filters(idx, "ingress") + self.filters(idx, "egress")
        par = tc_parent(direction or "ingress") if parent is None else parent
        try:
            msgs = self.request(RTM_GETTFILTER,
                                _TCMSG.pack(socket.AF_UNSPEC, idx, 0, par, 0), NLM_F_DUMP,
                                obj=f"filters on {index!r}")
        except KernelError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT) and not self.has_clsact(idx):
                return []  # no clsact qdisc: no filters either
            raise
        out = []
        for m in msgs:
            if m.type != RTM_NEWTFILTER:
                continue
            f = _parse_filter(m.payload)
            if f is not None and f.handle:
                out.append(f)
        return out

    def filter_del(self, index: int | str, direction: str = "ingress", *, prio: int,
                   handle: int, protocol: int = ETH_P_ALL, kind: str = "bpf",
                   parent: int | None = None) -> None:
        """Delete exactly one filter (prio *and* handle: without a handle the kernel would
        delete every filter of that prio)."""
        if not prio or not handle:
            raise BpfkitError("filter_del needs both prio and handle to delete one filter")
        idx = self.ifindex(index)
        par = tc_parent(direction) if parent is None else parent
        info = ((prio & 0xFFFF) << 16) | socket.htons(protocol)
        body = _TCMSG.pack(socket.AF_UNSPEC, idx, handle, par, info) + attr(TCA_KIND, kind)
        self.request(RTM_DELTFILTER, body, obj=f"filter prio {prio} handle {handle:#x} "
                                                f"on {index!r} {direction}")

    # -------------------------------------------------------------- XDP

    def xdp_set(self, index: int | str, prog_fd: int, flags: int = 0, *,
                expected_fd: int | None = None) -> None:
        """Attach (``prog_fd`` >= 0) or detach (-1) XDP through IFLA_XDP.

        ``flags``: XDP_FLAGS_* (mode, UPDATE_IF_NOEXIST); ``expected_fd`` adds
        XDP_FLAGS_REPLACE so the change only happens if that program is the one attached.
        """
        idx = self.ifindex(index)
        sub = attr(IFLA_XDP_FD, prog_fd, "=i")
        if expected_fd is not None:
            flags |= XDP_FLAGS_REPLACE
            sub += attr(IFLA_XDP_EXPECTED_FD, expected_fd, "=i")
        if flags:
            sub += attr(IFLA_XDP_FLAGS, flags)
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, idx, 0, 0) + nested(IFLA_XDP, sub)
        self.request(RTM_SETLINK, body, obj=f"XDP on interface {index!r}")

    def xdp_query(self, index: int | str) -> XdpState:
        return self.link(index).xdp


# ------------------------------------------------------------------ parsing helpers


def _extack(body: bytes, off: int, flags: int) -> str | None:
    if not flags & NLM_F_ACK_TLVS or off >= len(body):
        return None
    try:
        msg = parse_attrs(body, off).get(NLMSGERR_ATTR_MSG)
    except BpfkitError:
        return None
    return _str(msg) or None


def _parse_link(payload: bytes) -> LinkAttrs:
    if len(payload) < _IFINFOMSG.size:
        raise ParseError("truncated ifinfomsg from the kernel")
    _fam, typ, idx, flags, _chg = _IFINFOMSG.unpack_from(payload)
    a = parse_attrs(payload, _IFINFOMSG.size)
    kind = ""
    if IFLA_LINKINFO in a:
        kind = _str(parse_attrs(a[IFLA_LINKINFO]).get(IFLA_INFO_KIND))
    xdp = XdpState()
    if IFLA_XDP in a:
        x = parse_attrs(a[IFLA_XDP])
        xdp = XdpState(attached=x.get(IFLA_XDP_ATTACHED, b"\0")[0],
                       prog_id=_u32(x.get(IFLA_XDP_PROG_ID)),
                       drv_prog_id=_u32(x.get(IFLA_XDP_DRV_PROG_ID)),
                       skb_prog_id=_u32(x.get(IFLA_XDP_SKB_PROG_ID)),
                       hw_prog_id=_u32(x.get(IFLA_XDP_HW_PROG_ID)))
    return LinkAttrs(index=idx, name=_str(a.get(IFLA_IFNAME)), flags=flags, type=typ,
                     mtu=_u32(a.get(IFLA_MTU)), kind=kind, xdp=xdp)


def _parse_filter(payload: bytes) -> TcFilter | None:
    if len(payload) < _TCMSG.size:
        return None
    _fam, idx, handle, parent, info = _TCMSG.unpack_from(payload)
    a = parse_attrs(payload, _TCMSG.size)
    f = TcFilter(ifindex=idx, parent=parent, prio=info >> 16,
                 protocol=socket.ntohs(info & 0xFFFF), handle=handle,
                 kind=_str(a.get(TCA_KIND)), chain=_u32(a.get(TCA_CHAIN)))
    if f.kind == "bpf" and TCA_OPTIONS in a:
        o = parse_attrs(a[TCA_OPTIONS])
        f.name = _str(o.get(TCA_BPF_NAME))
        f.prog_id = _u32(o.get(TCA_BPF_ID))
        f.direct_action = bool(_u32(o.get(TCA_BPF_FLAGS)) & TCA_BPF_FLAG_ACT_DIRECT)
    return f


# ------------------------------------------------------------------ module shortcuts


def ifindex(name: str | int, netns: NetnsRef = None) -> int:
    """Interface index of ``name`` (in ``netns``); NotFound if there is none."""
    if isinstance(name, int):
        return name
    if netns is None:
        try:
            return socket.if_nametoindex(name)
        except OSError:
            raise NotFound("if_nametoindex", errno.ENODEV, obj=f"interface {name!r}",
                           hint="no such network interface (in this network namespace)")
    with Netlink(netns) as nl:
        return nl.ifindex(name)


def ifname(index: int, netns: NetnsRef = None) -> str:
    """Interface name of ``index`` (in ``netns``)."""
    if netns is None:
        try:
            return socket.if_indextoname(index)
        except OSError:
            raise NotFound("if_indextoname", errno.ENODEV, obj=f"interface index {index}",
                           hint="no such network interface (in this network namespace)")
    with Netlink(netns) as nl:
        return nl.ifname(index)


def links(netns: NetnsRef = None) -> list[LinkAttrs]:
    with Netlink(netns) as nl:
        return nl.links()

