"""struct_ops maps: a TCP congestion control written in BPF C, registered and used."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

import bpfkit
from bpfkit._consts import BPF_F_LINK, LinkType, MapType, ProgramType
from bpfkit.btf import Spec
from bpfkit.btf import types as bt
from bpfkit.errors import LoadError
from bpfkit.loader import struct_ops_value
from bpfkit.spec import CollectionSpec, StructOpsSpec

AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


def available() -> list[str]:
    with open(AVAILABLE) as f:
        return f.read().split()


@pytest.fixture
def cc_obj(bpf_obj) -> Path:  # type: ignore[no-untyped-def]
    return bpf_obj("tcp_cc.bpf.c")


def test_spec_struct_ops_maps(cc_obj: Path) -> None:
    spec = CollectionSpec.from_file(cc_obj)
    m = spec.maps["bpfkit_cc"]
    assert m.type == MapType.STRUCT_OPS and m.key_size == 4 and m.max_entries == 1
    assert m.flags == BPF_F_LINK and m.section == ".struct_ops.link"
    so = m.struct_ops
    assert so is not None and so.link and so.type_name == "tcp_congestion_ops"
    assert so.programs == {"ssthresh": "bpfkit_ssthresh", "cong_avoid": "bpfkit_cong_avoid",
                           "undo_cwnd": "bpfkit_undo_cwnd"}
    assert spec.btf is not None and spec.btf.type(so.type_id).name == "tcp_congestion_ops"
    name = spec.btf.type(so.type_id).member("name")  # type: ignore[attr-defined]
    assert bytes(so.data[name.bit_offset // 8:][:10]) == b"bpfkit_cc\0"
    # the relocated function pointers are cleared in the initial data
    fp = spec.btf.type(so.type_id).member("ssthresh")  # type: ignore[attr-defined]
    assert so.data[fp.bit_offset // 8:][:8] == bytes(8)
    legacy = spec.maps["bpfkit_cc_legacy"]
    assert legacy.flags == 0 and legacy.struct_ops is not None and not legacy.struct_ops.link
    assert spec.programs["bpfkit_ssthresh"].prog_type == ProgramType.STRUCT_OPS
    # struct_ops programs no map uses are not loaded (libbpf does the same)
    assert not spec.programs["bpfkit_unused"].autoload
    assert spec.programs["bpfkit_ssthresh"].autoload


def _kernel_cc() -> tuple[Spec, int, int]:
    k = Spec.kernel()
    return (k, k.ids_by_name("tcp_congestion_ops", bt.Struct)[0],
            k.ids_by_name("bpf_struct_ops_tcp_congestion_ops", bt.Struct)[0])


def test_struct_ops_value_layout(cc_obj: Path) -> None:
    """Members are matched by name into the kernel layout; fds go into function slots."""
    spec = CollectionSpec.from_file(cc_obj)
    so = spec.maps["bpfkit_cc"].struct_ops
    assert so is not None and spec.btf is not None
    k, kid, wid = _kernel_cc()
    val = struct_ops_value(so, spec.btf, k, kid, wid,
                           {"ssthresh": 101, "cong_avoid": 102, "undo_cwnd": 103})
    wrapper = k.type(wid)
    assert isinstance(wrapper, bt.Struct) and len(val) == wrapper.size
    base = wrapper.member("data").bit_offset // 8
    kt = k.type(kid)
    assert isinstance(kt, bt.Struct)

    def at(member: str, size: int) -> bytes:
        off = base + kt.member(member).bit_offset // 8
        return val[off:off + size]

    assert at("ssthresh", 8) == (101).to_bytes(8, "little")
    assert at("cong_avoid", 8) == (102).to_bytes(8, "little")
    assert at("undo_cwnd", 8) == (103).to_bytes(8, "little")
    assert at("name", 16) == b"bpfkit_cc".ljust(16, b"\0")
    assert at("set_state", 8) == bytes(8) and at("owner", 8) == bytes(8)
    assert val[:base] == bytes(base)  # refcnt/state: the kernel's to set


def test_struct_ops_value_rejects_what_the_kernel_cannot_take() -> None:
    k, kid, wid = _kernel_cc()
    # a local type with a member the kernel's struct lacks, and one of another size
    local = Spec.build([bt.Int(4, 0, name="u32"), bt.Int(8, 0, name="u64"),
                        bt.Struct(size=16, members=[bt.Member("bogus", 1, 0),
                                                    bt.Member("flags", 2, 64)],
                                  name="tcp_congestion_ops")])
    so = StructOpsSpec("tcp_congestion_ops", 3, bytearray(16))
    # all zero: nothing to lose, accepted
    assert len(struct_ops_value(so, local, k, kid, wid, {})) == k.sizeof(wid)
    so.data[0] = 1
    with pytest.raises(LoadError, match="'bogus' is set but the kernel's struct"):
        struct_ops_value(so, local, k, kid, wid, {})
    so.data[0] = 0
    so.data[8] = 1
    with pytest.raises(LoadError, match="'flags' is 8 bytes here but 4 in the kernel"):
        struct_ops_value(so, local, k, kid, wid, {})


def _transfer(cc: bytes, nbytes: int = 4 << 20) -> bytes:
    """Send ``nbytes`` over loopback TCP with congestion control ``cc``; return its name."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = bytearray()

    def sink() -> None:
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                got.extend(chunk)

    t = threading.Thread(target=sink)
    t.start()
    try:
        with socket.create_connection(srv.getsockname()) as c:
            c.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc)
            used = c.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0")
            c.sendall(b"x" * nbytes)
    finally:
        t.join(10)
        srv.close()
    assert len(got) == nbytes
    return used


@pytest.mark.requires_root
def test_tcp_congestion_control_link(cc_obj: Path) -> None:
    assert "bpfkit_cc" not in available()
    with bpfkit.load(cc_obj) as coll:
        assert "bpfkit_unused" not in coll.programs
        # loaded for one member of the kernel's type each
        info = coll.programs["bpfkit_cong_avoid"].info()
        assert info.attach_btf_id == _kernel_cc()[1]
        assert "bpfkit_cc" not in available()  # .struct_ops.link: registered by the link
        link = coll.attach_struct_ops("bpfkit_cc")
        li = link.info()
        assert li.type == LinkType.STRUCT_OPS
        assert li.target["map_id"] == coll.maps["bpfkit_cc"].info().id
        assert "bpfkit_cc" in available()
        before = coll.variables["cong_avoid_calls"].value
        assert _transfer(b"bpfkit_cc") == b"bpfkit_cc"
        assert coll.variables["cong_avoid_calls"].value > before
        link.close()
        assert "bpfkit_cc" not in available()
        with pytest.raises(LoadError, match="no struct_ops map 'nope'"):
            coll.attach_struct_ops("nope")
    assert "bpfkit_cc" not in available()


@pytest.mark.requires_root
def test_tcp_congestion_control_plain_map_and_attach_all(cc_obj: Path) -> None:
    with bpfkit.load(cc_obj) as coll:
        links = coll.attach_all()
        assert len(links) == 2
        assert {"bpfkit_cc", "bpfkit_cc_old"} <= set(available())
        assert _transfer(b"bpfkit_cc_old", 1 << 20) == b"bpfkit_cc_old"
        assert coll.variables["cong_avoid_calls"].value > 0
    # closing the collection unregisters both (map key 0 deleted, link closed)
    assert not {"bpfkit_cc", "bpfkit_cc_old"} & set(available())
