"""The example of docs/pytest-plugin.md: an XDP program that drops UDP to one port,
tested with crafted packets through the bpfkit pytest plugin's fixtures."""

from __future__ import annotations

import socket

import pytest

from bpfkit.testing.packets import tcp_packet, udp_packet

BPF_OBJECT = "xdp_drop_udp.bpf.c"          # found beside this file or in bpf/
BPF_CONSTANTS = {"blocked_port": 5353}

pytestmark = pytest.mark.requires_root


@pytest.fixture(scope="module")
def prog(bpf_collection):  # type: ignore[no-untyped-def]
    return bpf_collection.programs["xdp_drop_udp"]


@pytest.mark.parametrize("src,dst", [("10.0.0.1", "10.0.0.2"), ("fd00::1", "fd00::2")])
def test_drops_udp_to_the_blocked_port(prog, bpf_test_run, src, dst):  # type: ignore[no-untyped-def]
    r = bpf_test_run.xdp(prog, udp_packet(src, dst, 40000, 5353, b"query"))
    assert r.action == "XDP_DROP" and r.dropped


@pytest.mark.parametrize("frame", [
    udp_packet("10.0.0.1", "10.0.0.2", 40000, 53, b"dns"),          # another UDP port
    tcp_packet("10.0.0.1", "10.0.0.2", 40000, 5353, flags="S"),     # TCP to that port
    udp_packet("fd00::1", "fd00::2", 5353, 53),                     # it is the source port
    b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28,           # ARP
])
def test_passes_everything_else(prog, bpf_test_run, frame):  # type: ignore[no-untyped-def]
    r = bpf_test_run.xdp(prog, frame)
    assert r.action == "XDP_PASS"
    assert r.data == frame                                          # untouched


def test_counts_drops(bpf_collection, prog, bpf_test_run):  # type: ignore[no-untyped-def]
    before = sum(bpf_collection.maps["dropped"][0])
    for _ in range(3):
        bpf_test_run.xdp(prog, udp_packet("10.0.0.1", "10.0.0.2", 1, 5353))
    assert sum(bpf_collection.maps["dropped"][0]) == before + 3


def test_other_port_via_constants(bpf_object, bpf_test_run):  # type: ignore[no-untyped-def]
    coll = bpf_object("xdp_drop_udp.bpf.c", constants={"blocked_port": 53})
    r = bpf_test_run.xdp(coll.programs["xdp_drop_udp"], udp_packet("10.0.0.1", "10.0.0.2", 1, 53))
    assert r.dropped


def test_on_a_real_interface(prog, veth_pair):  # type: ignore[no-untyped-def]
    """Attached to the peer end of a veth pair: datagrams to 5353 vanish, others arrive."""
    from bpfkit import netns
    with netns.enter(veth_pair.ns):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind((veth_pair.peer_ip, 0))
        rx.settimeout(2)
        blocked = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blocked.bind((veth_pair.peer_ip, 5353))
        blocked.settimeout(0.3)
        link = prog.attach(ifname=veth_pair.peer)
    try:
        port = rx.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"dropped", (veth_pair.peer_ip, 5353))
            tx.sendto(b"arrives", (veth_pair.peer_ip, port))
            assert rx.recvfrom(100)[0] == b"arrives"
            with pytest.raises(TimeoutError):
                blocked.recvfrom(100)
    finally:
        link.close()
        rx.close()
        blocked.close()
