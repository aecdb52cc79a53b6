"""Networking attachments against the real kernel: netlink, netns, tcx, tc, XDP, sockets,
netfilter, sk_lookup, flow dissector, sockmap and stale-attachment cleanup.

Every test runs on a veth pair whose peer end lives in a fresh network namespace (or in a
fresh namespace alone), counts exactly the packets it sends (the programs match IPv4/UDP to
one port), and checks afterwards that nothing it attached is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from bpfkit import asm, cleanup, netlink, netns
from bpfkit import syscall as sc
from bpfkit._consts import AttachType, Cmd, MapType, ProgramType
from bpfkit.attach import net
from bpfkit.errors import KernelError, NotFound
from bpfkit.link import Link
from bpfkit.maps import Map
from bpfkit.program import Program
from bpfkit.testing.net import VethPair

pytestmark = pytest.mark.requires_root

W, H, B, DW = asm.BPF_W, asm.BPF_H, asm.BPF_B, asm.BPF_DW
R0, R1, R2, R3, R4, R5, R6, R10 = asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R6, asm.R10
PORT = 40999
N = 7

# __sk_buff.data / data_end, xdp_md.data / data_end
SKB_DATA, SKB_DATA_END = 76, 80
XDP_DATA, XDP_DATA_END = 0, 4
TC_ACT_OK, TCX_NEXT, XDP_PASS = 0, -1, 2


# ------------------------------------------------------------------ programs


def _count_then(m: Map, retval: int, match: list[object],
                miss: int | None = None) -> list[asm.Instruction]:
    """``match`` jumps to "miss" when the packet is not one of ours; else bump m[0].

    Returns ``retval`` for a match and ``miss`` (default: ``retval``) otherwise.
    """
    return asm.assemble([
        *match,
        asm.st_mem(W, R10, -4, 0),
        asm.mov64_reg(R2, R10),
        asm.add64_imm(R2, -4),
        asm.ld_map_fd(R1, m.fd),
        asm.call("map_lookup_elem"),
        asm.jmp_imm(asm.BPF_JEQ, R0, 0, "done"),
        asm.mov64_imm(R1, 1),
        asm.atomic_op(DW, asm.BPF_ADD, R0, R1, 0),
        "done",
        asm.mov64_imm(R0, retval),
        asm.exit(),
        *(["miss", asm.mov64_imm(R0, retval if miss is None else miss), asm.exit()]
          if match else []),
    ])


def _be16(v: int) -> int:
    """What a little-endian u16 load of the big-endian value ``v`` yields."""
    return ((v & 0xFF) << 8) | (v >> 8)


def _direct_udp_match(data_off: int, end_off: int, port: int) -> list[object]:
    """Direct packet access: Ethernet / IPv4 (no options) / UDP with dport == port."""
    return [
        asm.ldx_mem(W, R2, R1, data_off),
        asm.ldx_mem(W, R3, R1, end_off),
        asm.mov64_reg(R4, R2),
        asm.add64_imm(R4, 38),
        asm.jmp_reg(asm.BPF_JGT, R4, R3, "miss"),
        asm.ldx_mem(H, R5, R2, 12),
        asm.jmp_imm(asm.BPF_JNE, R5, _be16(0x0800), "miss"),
        asm.ldx_mem(B, R5, R2, 23),
        asm.jmp_imm(asm.BPF_JNE, R5, 17, "miss"),
        asm.ldx_mem(H, R5, R2, 36),
        asm.jmp_imm(asm.BPF_JNE, R5, _be16(port), "miss"),
    ]


def _ldabs_udp_match(port: int) -> list[object]:
    """Legacy packet loads (socket filters): same match, bytes in network order."""
    return [
        asm.mov64_reg(R6, R1),
        asm.ld_abs(H, 12), asm.jmp_imm(asm.BPF_JNE, R0, 0x0800, "miss"),
        asm.ld_abs(B, 23), asm.jmp_imm(asm.BPF_JNE, R0, 17, "miss"),
        asm.ld_abs(H, 36), asm.jmp_imm(asm.BPF_JNE, R0, port, "miss"),
    ]


@contextlib.contextmanager
def counter_map() -> Iterator[Map]:
    m = Map.create(MapType.ARRAY, 4, 8, 1, name="bk_count", value=ctypes.c_uint64)
    try:
        yield m
    finally:
        m.close()


def tc_prog(m: Map, port: int = PORT, name: str = "bk_tc",
            retval: int = TC_ACT_OK) -> Program:
    return Program.load(ProgramType.SCHED_CLS,
                        _count_then(m, retval, _direct_udp_match(SKB_DATA, SKB_DATA_END,
                                                                    port)), name=name)


def xdp_prog(m: Map, port: int = PORT) -> Program:
    return Program.load(ProgramType.XDP,
                        _count_then(m, XDP_PASS, _direct_udp_match(XDP_DATA, XDP_DATA_END,
                                                                   port)),
                        name="bk_xdp", expected_attach_type=AttachType.XDP)


# ------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def private_run_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Keep this test's attachment records apart from other bpfkit users on the machine."""
    monkeypatch.setenv("BPFKIT_RUN_DIR", str(tmp_path / "run"))
    yield
    mine = [r for r in cleanup.records() if r.pid == os.getpid()]
    assert mine == [], "attachment records left behind"


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with VethPair() as v:
        path = v.ns.path if v.ns else ""
        _warm_neighbour(v)
        yield v
    assert not os.path.exists(path), "network namespace left behind"
    with pytest.raises(NotFound):
        netlink.ifindex(v.host)


def _warm_neighbour(v: VethPair) -> None:
    """Resolve the peer's MAC before counting (a packet to another port, and back)."""
    with netns.enter(v.ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind((v.peer_ip, PORT + 1))
        srv.settimeout(2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.sendto(b"warm", (v.peer_ip, PORT + 1))
            assert srv.recv(16) == b"warm"


def send_udp(dst: str, n: int = N, port: int = PORT) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(b"bpfkit %d" % i, (dst, port))


def wait_count(m: Map, want: int, timeout: float = 3.0) -> int:
    """Wait until m[0] reaches ``want``, then a little more to catch any over-count."""
    deadline = time.monotonic() + timeout
    while m[0] < want and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    return int(m[0])


def link_ids_of(*progs: Program) -> list[int]:
    """Ids of every bpf_link in the system that holds one of ``progs``."""
    want = {p.id for p in progs}
    out, cur = [], 0
    while (nxt := sc.get_next_id(Cmd.LINK_GET_NEXT_ID, cur)) is not None:
        cur = nxt
        try:
            fd = sc.get_fd_by_id(Cmd.LINK_GET_FD_BY_ID, nxt)
        except KernelError:
            continue
        try:
            if sc.obj_info(fd, sc.LinkInfo()).prog_id in want:
                out.append(nxt)
        finally:
            os.close(fd)
    return out


def assert_clean(v: VethPair, *progs: Program, qdisc_preexisting: bool = False) -> None:
    """Nothing of ours attached to either end of the pair any more."""
    for name, ns in ((v.host, None), (v.peer, v.ns)):
        with netlink.Netlink(ns) as nl:
            assert nl.filters(name) == [], f"tc filters left on {name}"
            if not qdisc_preexisting:
                assert not nl.has_clsact(name), f"clsact qdisc left on {name}"
            assert nl.xdp_query(name).ids() == {}, f"XDP program left on {name}"
        for d in ("ingress", "egress"):
            q = net.query_tcx(name, d, netns=ns)
            assert q.prog_ids == [] and q.link_ids == [], f"tcx {d} left on {name}"
    assert link_ids_of(*progs) == []


# ------------------------------------------------------------------ netlink / netns


def test_netlink_basics() -> None:
    assert netlink.ifindex("lo") == 1 and netlink.ifname(1) == "lo"
    with pytest.raises(NotFound):
        netlink.ifindex("bpfkit-nonexistent")
    with netlink.Netlink() as nl:
        assert nl.link("lo").loopback
        with pytest.raises(KernelError) as ei:  # ENOENT, or EINVAL "Invalid handle" once lo
            nl.clsact_del("lo")                 # had a clsact: the kernel's answer varies
        assert ei.value.detail  # the kernel's extended ack message
        with pytest.raises(KernelError) as ei2:
            nl.veth_add("lo", "bk-peer-dup")  # lo exists
        assert ei2.value.errno == errno.EEXIST
    assert "lo" not in net.interfaces() and "lo" in net.interfaces(skip_loopback=False)


def test_netns_enter_restores() -> None:
    home = netns.netns_inode()
    with netns.NetNS.create() as ns:
        assert os.path.exists(ns.path)
        with ns.enter():
            assert netns.netns_inode() == ns.inode != home
            assert net.interfaces(skip_loopback=False) == ["lo"]
        assert netns.netns_inode() == home
        assert netlink.ifindex("lo", ns) == 1
    assert not os.path.exists(ns.path)


def test_veth_pair(veth: VethPair) -> None:
    v = veth
    with netlink.Netlink() as nl:
        host = nl.link(v.host)
        assert host.up and host.kind == "veth"
        assert any(a.address == v.host_ip for a in nl.addrs(v.host))
    with netlink.Netlink(v.ns) as nl:
        peer = nl.link(v.peer)
        assert peer.up and peer.index == v.peer_index
        assert any(a.address == v.peer_ip for a in nl.addrs(v.peer))
    assert v.peer not in net.interfaces()
    assert v.peer in net.interfaces(netns=v.ns)


def test_veth_move_to_netns() -> None:
    a, b = f"bkm{os.getpid() % 100000}a", f"bkm{os.getpid() % 100000}b"
    with netns.NetNS.create() as ns, netlink.Netlink() as nl:
        nl.veth_add(a, b)
        try:
            fd = ns.open()
            try:
                nl.link_set(b, netns_fd=fd)
            finally:
                os.close(fd)
            with pytest.raises(NotFound):
                nl.ifindex(b)
            with netlink.Netlink(ns) as nl2:
                nl2.link_set(b, up=True)
                nl2.addr_add(b, "fd00:bbbb::2/64")
                assert nl2.link(b).up
                assert [x.address for x in nl2.addrs(b) if x.family == socket.AF_INET6
                        and x.address.startswith("fd00")] == ["fd00:bbbb::2"]
            nl.link_set(a, up=True)
            nl.link_set(a, up=False)
            assert not nl.link(a).up
        finally:
            nl.link_del(a)
    assert not netns.exists(ns.name)


# ------------------------------------------------------------------ tcx


def test_tcx_ingress_egress(veth: VethPair) -> None:
    v = veth
    with counter_map() as m_out, counter_map() as m_in, counter_map() as m_first:
        p_out, p_in, p_first = tc_prog(m_out), tc_prog(m_in), tc_prog(m_first, name="bk_first",
                                                                  retval=TCX_NEXT)
        try:
            l_out = net.attach_tcx(p_out, v.host, "egress")
            l_in = net.attach_tcx(p_in, v.peer, "ingress", netns=v.ns)
            assert type(l_out) is Link and l_out.info().target["ifindex"] == v.host_index
            l_first = net.attach_tcx(p_first, v.peer, "ingress", before=l_in, netns=v.ns)
            q = net.query_tcx(v.peer, "ingress", netns=v.ns)
            assert q.prog_ids == [p_first.id, p_in.id]
            assert q.link_ids == [l_first.id, l_in.id]
            send_udp(v.peer_ip)
            assert wait_count(m_out, N) == N
            assert wait_count(m_in, N) == N
            assert wait_count(m_first, N) == N
            for lk in (l_out, l_in, l_first):
                lk.close()
            send_udp(v.peer_ip)
            time.sleep(0.1)
            assert (m_out[0], m_in[0], m_first[0]) == (N, N, N)
            assert_clean(v, p_out, p_in, p_first)
        finally:
            for p in (p_out, p_in, p_first):
                p.close()


def test_program_close_detaches(veth: VethPair) -> None:
    with counter_map() as m:
        p, px = tc_prog(m), xdp_prog(m)
        net.attach_tcx(p, veth.host, "egress")
        net.attach_tc(p, veth.host, "ingress")
        net.attach_xdp(px, veth.host, mode="generic", replace=True)
        assert len(p.links) == 2 and len(px.links) == 1
        p.close()
        px.close()
        assert_clean(veth)


# ------------------------------------------------------------------ legacy tc


def test_tc_legacy(veth: VethPair) -> None:
    v = veth
    with counter_map() as m_out, counter_map() as m_in:
        p_out, p_in = tc_prog(m_out), tc_prog(m_in)
        try:
            l_out = net.attach_tc(p_out, v.host, "egress")
            l_in = net.attach_tc(p_in, v.peer, "ingress", netns=v.ns, prio=7, handle=3)
            (f_out,) = net.tc_filters(v.host, "egress")
            assert f_out.kind == "bpf" and f_out.direct_action
            assert f_out.name == f"bpfkit:bk_tc:{os.getpid()}:{cleanup.process_start_time()}" and f_out.prog_id == p_out.id
            (f_in,) = net.tc_filters(v.peer, netns=v.ns)
            assert (f_in.prio, f_in.handle, f_in.prog_id) == (7, 3, p_in.id)
            assert {r.kind for r in cleanup.records()} == {"tc", "tc-qdisc"}
            send_udp(v.peer_ip)
            assert wait_count(m_out, N) == N
            assert wait_count(m_in, N) == N
            l_out.close()
            l_in.close()
            assert cleanup.records() == []
            assert_clean(v, p_out, p_in)
        finally:
            p_out.close()
            p_in.close()


def test_close_after_device_is_gone() -> None:
    with counter_map() as m:
        p, px = tc_prog(m), xdp_prog(m)
        try:
            with VethPair() as v:
                lk = net.attach_tc(p, v.peer, "egress", netns=v.ns)
                lx = net.attach_xdp(px, v.peer, mode="generic", replace=True, netns=v.ns)
                with pytest.raises(Exception, match="direction"):
                    net.attach_tc(p, v.host, "sideways")
            lk.close()
            lx.close()
            assert cleanup.records() == []
        finally:
            p.close()
            px.close()


def test_tc_keeps_foreign_qdisc_and_filters(veth: VethPair) -> None:
    """A clsact qdisc bpfkit did not create stays; a second filter survives ours."""
    v = veth
    with counter_map() as m:
        p = tc_prog(m)
        try:
            with netlink.Netlink() as nl:
                assert nl.clsact_add(v.host) is True
                other = nl.filter_add_bpf(v.host, p.fd, "ingress", name="not-bpfkit", prio=1,
                                          handle=1)
                link = net.attach_tc(p, v.host, "ingress", prio=1, handle=2)
                assert len(nl.filters(v.host, "ingress")) == 2
                link.close()
                (left,) = nl.filters(v.host, "ingress")
                assert (left.name, left.handle) == ("not-bpfkit", 1)
                assert nl.has_clsact(v.host)
                nl.filter_del(v.host, "ingress", prio=other.prio, handle=other.handle)
                nl.clsact_del(v.host)
            assert_clean(v, p)
        finally:
            p.close()


# ------------------------------------------------------------------ XDP


@pytest.mark.parametrize("mode", ["generic", "driver", "auto"])
def test_xdp_link(veth: VethPair, mode: str) -> None:
    v = veth
    with counter_map() as m:
        p = xdp_prog(m)
        try:
            lk = net.attach_xdp(p, v.peer, mode=mode, netns=v.ns)
            assert lk.info().type.name == "XDP"
            ids = net.xdp_state(v.peer, netns=v.ns).ids()
            want_mode = "generic" if mode == "generic" else "driver"
            assert ids == {want_mode: p.id}
            send_udp(v.peer_ip)
            assert wait_count(m, N) == N
            lk.close()
            assert_clean(v, p)
        finally:
            p.close()


def test_xdp_netlink_generic(veth: VethPair) -> None:
    v = veth
    with counter_map() as m, counter_map() as m2:
        p, p2 = xdp_prog(m), xdp_prog(m2)
        try:
            nl_link = net.attach_xdp(p, v.peer, mode="generic", replace=True, netns=v.ns)
            assert nl_link.closed is False and nl_link._fd < 0  # netlink: no bpf_link
            assert net.xdp_state(v.peer, netns=v.ns).ids() == {"generic": p.id}
            assert [r.kind for r in cleanup.records()] == ["xdp"]
            send_udp(v.peer_ip)
            assert wait_count(m, N) == N
            # A bpf_link cannot take over a netlink attachment...
            with pytest.raises(KernelError) as ei:
                net.attach_xdp(p2, v.peer, mode="generic", netns=v.ns)
            assert ei.value.errno == errno.EBUSY and "replace=True" in str(ei.value)
            # ... but replace=<expected program> can, atomically.
            nl_link2 = net.attach_xdp(p2, v.peer, mode="generic", replace=p, netns=v.ns)
            assert net.xdp_state(v.peer, netns=v.ns).ids() == {"generic": p2.id}
            nl_link.close()  # no longer ours: must not remove p2
            assert net.xdp_state(v.peer, netns=v.ns).ids() == {"generic": p2.id}
            send_udp(v.peer_ip)
            assert wait_count(m2, N) == N and m[0] == N
            nl_link2.close()
            assert cleanup.records() == []
            assert_clean(v, p, p2)
        finally:
            p.close()
            p2.close()


# ------------------------------------------------------------------ socket filters


def test_socket_filter_socketpair() -> None:
    with counter_map() as m, counter_map() as m_drop:
        accept = Program.load(ProgramType.SOCKET_FILTER, _count_then(m, 0xFFFF, []),
                              name="bk_accept")
        drop = Program.load(ProgramType.SOCKET_FILTER, _count_then(m_drop, 0, []),
                            name="bk_drop")
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            lk = net.attach_socket_filter(accept, b)
            for i in range(N):
                a.send(b"x%d" % i)
            assert [b.recv(16) for _ in range(N)] == [b"x%d" % i for i in range(N)]
            assert m[0] == N
            lk.close()
            a.send(b"after")
            assert b.recv(16) == b"after" and m[0] == N
            lk2 = net.attach_socket_filter(drop, b.fileno())  # by fd
            a.send(b"dropped")
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                b.recv(16)
            assert m_drop[0] == 1
            lk2.close()
            a.send(b"again")
            assert b.recv(16) == b"again"
        finally:
            a.close()
            b.close()
            accept.close()
            drop.close()


def test_socket_filter_raw_packet_socket(veth: VethPair) -> None:
    v = veth
    with counter_map() as m:
        # Keep (up to 64 KiB of) our UDP packets, drop everything else.
        p = Program.load(ProgramType.SOCKET_FILTER,
                         _count_then(m, 0xFFFF, _ldabs_udp_match(PORT), miss=0), name="bk_raw")
        s = net.open_raw_socket(v.peer, netns=v.ns, bind=False)
        try:
            lk = net.attach_socket_filter(p, s)
            s.bind((v.peer, netlink.ETH_P_ALL))
            s.settimeout(2)
            send_udp(v.peer_ip)
            frames = [s.recv(2048) for _ in range(N)]
            assert all(f[12:14] == b"\x08\x00" and f[36:38] == PORT.to_bytes(2, "big")
                       for f in frames)
            assert wait_count(m, N) == N
            lk.close()
        finally:
            s.close()
            p.close()


# ------------------------------------------------------------------ netns-wide hooks


def _udp_roundtrip(n: int, port: int = PORT) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        srv.bind(("127.0.0.1", port))
        srv.settimeout(2)
        for i in range(n):
            c.sendto(b"p%d" % i, ("127.0.0.1", port))
        for _ in range(n):
            srv.recv(16)


def test_netfilter_local_in() -> None:
    with counter_map() as m, netns.NetNS.create() as ns:
        with netlink.Netlink(ns) as nl:
            nl.link_set("lo", up=True)
        p = Program.load(ProgramType.NETFILTER, _count_then(m, 1, []), name="bk_nf",
                         expected_attach_type=AttachType.NETFILTER)
        try:
            lk = net.attach_netfilter(p, net.NFPROTO_IPV4, net.NF_INET_LOCAL_IN, priority=-10,
                                      netns=ns)
            info = lk.info()
            assert info.type.name == "NETFILTER"
            assert info.target["hooknum"] == net.NF_INET_LOCAL_IN
            assert info.target["priority"] == -10
            with ns.enter():
                _udp_roundtrip(N)  # the only IPv4 traffic in this namespace
            assert wait_count(m, N) == N
            lk.close()
            with ns.enter():
                _udp_roundtrip(2)
            assert m[0] == N and link_ids_of(p) == []
        finally:
            p.close()


def test_sk_lookup() -> None:
    # struct bpf_sk_lookup: local_port (host order u32) at offset 60
    with counter_map() as m, netns.NetNS.create() as ns:
        with netlink.Netlink(ns) as nl:
            nl.link_set("lo", up=True)
        match = [asm.ldx_mem(W, R2, R1, 60), asm.jmp_imm(asm.BPF_JNE, R2, PORT, "miss")]
        p = Program.load(ProgramType.SK_LOOKUP, _count_then(m, 1, match), name="bk_sklookup",
                         expected_attach_type=AttachType.SK_LOOKUP)
        try:
            lk = net.attach_sk_lookup(p, ns)
            info = lk.info()
            assert info.type.name == "NETNS" and info.target["netns_ino"] == ns.inode
            with ns.enter():
                _udp_roundtrip(N)
            assert wait_count(m, N) == N
            lk.close()
            assert link_ids_of(p) == []
        finally:
            p.close()


def test_flow_dissector() -> None:
    with netns.NetNS.create() as ns:
        p = Program.load(ProgramType.FLOW_DISSECTOR,
                         [asm.mov64_imm(R0, 0), asm.exit()], name="bk_flow")  # BPF_OK
        try:
            lk = net.attach_flow_dissector(p, ns)
            assert lk.info().target["netns_ino"] == ns.inode
            fd = ns.open()
            try:
                ids, _flags, _rev = sc.prog_query(fd, AttachType.FLOW_DISSECTOR)
                assert ids == [p.id]
                lk.close()
                assert sc.prog_query(fd, AttachType.FLOW_DISSECTOR)[0] == []
            finally:
                os.close(fd)
        finally:
            p.close()


def test_sockmap_sk_msg() -> None:
    with counter_map() as m, netns.NetNS.create() as ns:
        with netlink.Netlink(ns) as nl:
            nl.link_set("lo", up=True)
        p = Program.load(ProgramType.SK_MSG, _count_then(m, 1, []), name="bk_skmsg",
                         expected_attach_type=AttachType.SK_MSG_VERDICT)
        smap = Map.create(MapType.SOCKMAP, 4, 4, 2, name="bk_sockmap")
        try:
            lk = net.attach_sockmap(p, smap)
            with ns.enter():
                srv = socket.create_server(("127.0.0.1", 0))
                cli = socket.create_connection(srv.getsockname())
            conn, _ = srv.accept()
            try:
                smap[0] = cli.fileno()
                for i in range(N):
                    cli.send(b"m%d" % i)
                    time.sleep(0.01)
                got = b""
                conn.settimeout(2)
                while len(got) < 2 * N:
                    got += conn.recv(64)
                assert got == b"".join(b"m%d" % i for i in range(N))
                assert m[0] == N
                assert type(lk) is Link and lk.info().type.name == "SOCKMAP"  # kernel 6.10+
                assert sc.prog_query(smap.fd, AttachType.SK_MSG_VERDICT)[0] == [p.id]
                lk.close()
                assert sc.prog_query(smap.fd, AttachType.SK_MSG_VERDICT)[0] == []
                assert link_ids_of(p) == []
                # A socket keeps the programs it got when it entered the map, until it leaves.
                del smap[0]
                cli.send(b"z")
                assert m[0] == N
            finally:
                for s in (conn, cli, srv):
                    s.close()
        finally:
            p.close()
            smap.close()


# ------------------------------------------------------------------ stale attachments


def _in_child(fn: Callable[[], None]) -> int:
    """Run ``fn`` in a forked child that then waits to be killed; return its pid once ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            fn()
            os.write(w, b"ok")
            time.sleep(60)
        finally:
            os._exit(1)
    os.close(w)
    try:
        assert os.read(r, 2) == b"ok", "child failed to attach"
    finally:
        os.close(r)
    return pid


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_cleanup_stale_tc_and_xdp(veth: VethPair) -> None:
    v = veth
    with counter_map() as m, counter_map() as m2:
        p, px = tc_prog(m), xdp_prog(m2)
        try:
            def attach() -> None:
                net.attach_tc(p, v.host, "egress")
                net.attach_tc(p, v.peer, "ingress", netns=v.ns)
                net.attach_xdp(px, v.peer, mode="generic", replace=True, netns=v.ns)

            pid = _in_child(attach)
            _kill(pid)
            # The attachments outlived the process that made them...
            names = [f.name for f in net.tc_filters(v.host)]
            assert len(names) == 1 and names[0].startswith(f"bpfkit:bk_tc:{pid}:"), names
            assert len(net.tc_filters(v.peer, netns=v.ns)) == 1
            assert net.xdp_state(v.peer, netns=v.ns).ids() == {"generic": px.id}
            st = cleanup.stale()
            assert sorted(r.kind for r in st) == ["tc", "tc", "tc-qdisc", "tc-qdisc", "xdp"]
            assert all(r.pid == pid for r in st)
            # ... a live process's records are not stale, and are left alone.
            token = cleanup.record("tc", {"netns_ino": 0})
            try:
                assert token not in {r.token for r in cleanup.stale()}
                done = cleanup.cleanup_stale()
                assert [r.token for r in cleanup.records()] == [token]
            finally:
                cleanup.forget(token)
            # tc-qdisc records go with the last tc filter on their device
            assert {r.kind for r in done} == {"tc", "xdp"} and cleanup.records() == []
            assert_clean(v, p, px)
        finally:
            p.close()
            px.close()


def test_sigterm_closes_live_attachments(veth: VethPair) -> None:
    v = veth
    with counter_map() as m:
        p = tc_prog(m)
        try:
            def attach() -> None:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                cleanup._signal_done = False  # a fresh process state for the child
                net.attach_tc(p, v.host, "ingress")

            pid = _in_child(attach)
            assert len(net.tc_filters(v.host)) == 1
            os.kill(pid, signal.SIGTERM)
            _pid, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
            assert net.tc_filters(v.host) == [] and cleanup.records() == []
            assert_clean(v, p)
        finally:
            p.close()
