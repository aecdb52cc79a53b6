"""The bpfkit pytest plugin (markers, leak check, fixtures) and the packet builders."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from pathlib import Path

import pytest

from bpfkit._consts import MapType, ProgramType
from bpfkit.attach import features as ft
from bpfkit.testing import packets as pk
from bpfkit.testing.plugin import _guest_kernel, _strip_option, check_feature

pytest_plugins = ["pytester"]

# ----------------------------------------------------------------------------- packets


def test_ipv4_header_checksum_known_vector() -> None:
    # The classic example header: 4500 0073 0000 4000 4011 xxxx c0a8 0001 c0a8 00c7
    hdr = pk.ipv4("192.168.0.1", "192.168.0.199", 17, b"\0" * (0x73 - 20), ident=0)[:20]
    assert hdr.hex() == "450000730000400040110000c0a80001c0a800c7".replace("0000c0a8", "b861c0a8", 1)
    assert pk.checksum(hdr) == 0


@pytest.mark.parametrize("src,dst", [("10.1.2.3", "10.3.2.1"), ("fd00::1", "fd00::beef")])
def test_builders_round_trip(src: str, dst: str) -> None:
    u = pk.parse(pk.udp_packet(src, dst, 1111, 2222, b"hello", dst_mac="aa:bb:cc:dd:ee:ff"))
    assert u["eth"]["dst"] == "aa:bb:cc:dd:ee:ff"
    assert u["ip"]["src"] == str(__import__("ipaddress").ip_address(src))
    assert u["udp"] == {"sport": 1111, "dport": 2222, "len": 13, "checksum_ok": True}
    assert u["payload"] == b"hello"
    t = pk.parse(pk.tcp_packet(src, dst, 5, 80, b"GET /", flags="PA", seq=7, ack=9))
    assert t["tcp"]["flags"] == "PA" and t["tcp"]["seq"] == 7 and t["tcp"]["checksum_ok"]
    assert t["payload"] == b"GET /"
    if ":" not in src:
        assert u["ip"]["checksum_ok"] and t["ip"]["checksum_ok"]


def test_builder_errors() -> None:
    with pytest.raises(pk.PacketError):
        pk.mac("zz:00:00:00:00:00")
    with pytest.raises(pk.PacketError):
        pk.udp_packet("10.0.0.1", "fd00::1", 1, 2)
    with pytest.raises(pk.PacketError):
        pk.tcp_packet("10.0.0.1", "10.0.0.2", 1, 2, flags="Q")
    with pytest.raises(pk.PacketError):
        pk.parse(b"\0" * 12 + b"\x08\x00\x45\0")


@pytest.mark.requires_root
def test_kernel_accepts_our_udp_checksum(veth_pair) -> None:  # type: ignore[no-untyped-def]
    """A crafted frame sent raw from the host end reaches a UDP socket in the peer's netns:
    the kernel verified the IPv4 header and UDP checksums (a wrong one is dropped)."""
    from bpfkit import netns
    with netns.enter(veth_pair.ns):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind((veth_pair.peer_ip, 0))
        rx.settimeout(0.5)
        ifreq = struct.pack("16s16x", veth_pair.peer.encode())
        peer_mac = fcntl.ioctl(rx.fileno(), 0x8927, ifreq)[18:24]  # SIOCGIFHWADDR
    port = rx.getsockname()[1]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)

    def frame(payload: bytes) -> bytes:
        return pk.udp_packet(veth_pair.host_ip, veth_pair.peer_ip, 4242, port, payload,
                             dst_mac=peer_mac)

    try:
        raw.bind((veth_pair.host, 0))
        for _ in range(10):  # the first frames may go out before the new link is ready
            raw.send(frame(b"first"))
            try:
                data, addr = rx.recvfrom(100)
                break
            except TimeoutError:
                continue
        assert data == b"first" and addr == (veth_pair.host_ip, 4242)
        bad = bytearray(frame(b"broken"))
        bad[14 + 20 + 6] ^= 0xFF  # corrupt the UDP checksum
        raw.send(bytes(bad))
        raw.send(frame(b"second"))
        assert rx.recvfrom(100)[0] == b"second"  # the corrupted one was dropped
    finally:
        raw.close()
        rx.close()


# ----------------------------------------------------------------------------- helpers


def test_option_helpers() -> None:
    assert _strip_option(["-q", "--bpf-kernel", "6.1", "-x"], "--bpf-kernel") == ["-q", "-x"]
    assert _strip_option(["--bpf-kernel=6.1", "t.py"], "--bpf-kernel") == ["t.py"]
    known = ("6.1.0-50-amd64", "6.12.117+deb12-cloud-amd64")
    assert _guest_kernel("6.1", known) == "6.1.0-50-amd64"
    assert _guest_kernel("6.12", known) == "6.12.117+deb12-cloud-amd64"
    assert _guest_kernel("5.10.0-1-amd64", known) == "5.10.0-1-amd64"


@pytest.mark.requires_root
def test_check_feature_names() -> None:
    # the plugin's answer is the feature probe's, whatever this kernel has
    assert check_feature("tcx")[0] is bool(ft.has_tcx())
    assert check_feature("prog:xdp")[0] is bool(ft.has_program_type(ProgramType.XDP))
    assert check_feature("map:ringbuf")[0] is bool(ft.has_map_type(MapType.RINGBUF))
    ok, reason = check_feature("kprobes")
    assert ok is bool(ft.has_kprobes())
    if not ok:
        assert "CONFIG_KPROBES" in reason or "kprobe" in reason
    with pytest.raises(ValueError, match="unknown feature"):
        check_feature("warp_drive")
    with pytest.raises(ValueError, match="ProgramType"):
        check_feature("prog:nonsense")


# ----------------------------------------------------------------------------- in pytester

MARKERS = """
import pytest

@pytest.mark.requires_kernel("99.0")
def test_future_kernel():
    pass

@pytest.mark.requires_kernel("3.0")
def test_old_kernel_ok():
    pass

@pytest.mark.requires_feature("kprobes")
def test_kprobes():
    pass

@pytest.mark.requires_feature("tcx", "prog:xdp")
def test_tcx():
    pass

@pytest.mark.requires_root
def test_root():
    pass
"""


@pytest.mark.requires_root
@pytest.mark.allow_fd_leak
def test_markers_skip_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_m=MARKERS)
    r = pytester.runpytest_subprocess("-rs", "-p", "bpfkit")
    r.assert_outcomes(passed=3, skipped=2)
    r.stdout.fnmatch_lines(["*needs Linux 99.0 or later; this kernel is *",
                            "*the kernel lacks kprobes: *"])


@pytest.mark.allow_fd_leak
def test_unknown_feature_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_u="""
        import pytest
        @pytest.mark.requires_feature("warp_drive")
        def test_x():
            pass
        """)
    r = pytester.runpytest_subprocess("-p", "bpfkit")
    assert r.ret != 0
    r.stderr.fnmatch_lines(["*test_u.py::test_x: unknown feature 'warp_drive' for "
                            "requires_feature*"])


LEAKS = """
import fcntl
import os
import pytest
import bpfkit
from bpfkit.maps import Map

def test_leaks_fd(bpf_leak_check):
    globals()["kept"] = Map.create(1, 4, 4, 1)   # never closed

@pytest.mark.allow_fd_leak
def test_allowed(bpf_leak_check):
    os.dup(0)

def test_leaks_pin(bpf_leak_check, tmp_path):
    m = Map.create(1, 4, 4, 1)
    m.pin(PIN)
    m.close()

def test_clean(bpf_leak_check):
    with Map.create(1, 4, 4, 1):
        pass
"""


@pytest.mark.requires_root
@pytest.mark.allow_fd_leak
def test_leak_check(pytester: pytest.Pytester) -> None:
    pin = f"/sys/fs/bpf/bpfkit_plugin_leak_{os.getpid()}"
    pytester.makeini("[pytest]\nbpf_leak_check_pins = true\n")
    pytester.makepyfile(test_l=LEAKS.replace("PIN", repr(pin)))
    try:
        r = pytester.runpytest_subprocess("-p", "bpfkit")
    finally:
        if os.path.exists(pin):
            os.unlink(pin)
    r.assert_outcomes(passed=4, errors=2)
    r.stdout.fnmatch_lines(["*file descriptors leaked by the test: * -> anon_inode:bpf-map*",
                            f"*bpffs pins left behind: {pin}*"])


@pytest.mark.requires_root
@pytest.mark.allow_fd_leak
def test_ini_leak_check_and_module_objects(pytester: pytest.Pytester) -> None:
    """With ``bpf_leak_check = true`` every test is checked, and objects loaded by the
    module-scoped bpf_object fixture are not mistaken for leaks."""
    src = os.path.join(os.path.dirname(__file__), "bpf", "xdp_drop_udp.bpf.c")
    tp_src = os.path.join(os.path.dirname(__file__), "..", "src", "bpfkit", "export", "configs",
                          "syscalls.bpf.c")
    pytester.makeini("[pytest]\nbpf_leak_check = true\n")
    pytester.makepyfile(test_o=f"""
        from bpfkit.maps import Map
        from bpfkit.testing.packets import udp_packet

        def test_first(bpf_object, bpf_test_run):
            coll = bpf_object({src!r}, constants={{"blocked_port": 7}})
            assert bpf_test_run.xdp(coll.programs["xdp_drop_udp"],
                                    udp_packet("1.1.1.1", "2.2.2.2", 1, 7)).dropped

        def test_second_reuses(bpf_object):
            assert bpf_object({src!r}, constants={{"blocked_port": 7}}) is \\
                bpf_object({src!r}, constants={{"blocked_port": 7}})

        def test_leaky_link(bpf_object):
            coll = bpf_object({tp_src!r})
            globals()["keep"] = coll.programs["count_enter"].attach()
        """)
    r = pytester.runpytest_subprocess("-p", "bpfkit")
    r.assert_outcomes(passed=3, errors=1)
    r.stdout.fnmatch_lines(["*BPF links still attached through leaked fds: * -> "
                            "anon_inode:bpf_link (link_type perf, link_id *, prog_id *)*"])


def test_bpf_kernel_with_a_broken_vm_module_fails_loudly(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """bpfkit.testing.vm is part of the package: if it cannot be imported that is a bug to
    see (the ImportError names it), never a fallback (tests/test_layers.py)."""
    pytester.makepyfile(test_k="def test_x():\n    pass\n")
    pytester.makeconftest("import sys\nsys.modules['bpfkit.testing.vm'] = None\n")
    r = pytester.runpytest_subprocess("-p", "bpfkit", "--bpf-kernel", "6.1")
    assert r.ret != 0
    assert "bpfkit.testing.vm" in r.stderr.str() + r.stdout.str()


REUSED = """
import os
import pytest

PATH = os.path.join(os.environ["BPFKIT_TEST_DIR"], "reused")
state = {}

@pytest.fixture
def transient():
    with open(PATH, "w") as f:
        f.write("old")
    state["fd"] = os.open(PATH, os.O_RDONLY)   # open while the leak check snapshots
    yield

@pytest.fixture
def gone(transient):
    with open(PATH + ".new", "w") as f:         # a new file (a new inode: the old
        f.write("new")                          # one still exists) ...
    os.close(state["fd"])                       # closed after the snapshot
    os.replace(PATH + ".new", PATH)             # ... at the same path
    yield

def test_leaks_reused_number(transient, bpf_leak_check, gone):
    fd = os.open(PATH, os.O_RDONLY)             # never closed: the number just freed
    assert fd == state["fd"]
"""


@pytest.mark.allow_fd_leak
def test_leak_check_sees_a_leak_on_a_number_reused_since_the_snapshot(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The leak check keys fds on what they are: a leaked fd whose number belonged to another
    file at snapshot time (same path, another inode) is still reported."""
    pytester.makepyfile(test_r=REUSED)
    monkeypatch.setenv("BPFKIT_TEST_DIR", str(tmp_path))
    r = pytester.runpytest_subprocess("-p", "bpfkit")
    r.assert_outcomes(passed=1, errors=1)
    r.stdout.fnmatch_lines([f"*file descriptors leaked by the test: * -> {tmp_path}/reused*"])
