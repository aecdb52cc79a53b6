"""Every map type created and exercised against the real kernel."""

from __future__ import annotations

import ctypes
import os
import socket

import pytest

import bpfkit
from bpfkit import Map, MapType
from bpfkit._consts import BPF_EXIST, BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_NOEXIST
from bpfkit.maps import possible_cpus

pytestmark = pytest.mark.requires_root


def test_hash_dict_api() -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=1024, name="h") as m:
        m[1] = 2
        assert int.from_bytes(m[1], "little") == 2
        assert 1 in m and 3 not in m
        assert m.get(3) is None and m.get(3, "d") == "d"
        with pytest.raises(KeyError):
            m[3]
        m.update(2, 5, BPF_NOEXIST)
        with pytest.raises(bpfkit.KernelError) as ei:
            m.update(2, 6, BPF_NOEXIST)
        assert "EEXIST" in str(ei.value) and "'h'" in str(ei.value)
        with pytest.raises(bpfkit.NotFound):
            m.update(9, 6, BPF_EXIST)
        assert sorted(int.from_bytes(k, "little") for k in m) == [1, 2]
        assert len(m) == 2
        assert m.pop(2) == (5).to_bytes(8, "little")
        del m[1]
        with pytest.raises(KeyError):
            del m[1]
        assert len(m) == 0
        with pytest.raises(bpfkit.BpfkitError):
            m[b"abc"] = 1  # wrong key size


def test_ctypes_layouts() -> None:
    class Val(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]

    with Map.create(MapType.HASH, 4, 8, 16, key=ctypes.c_uint32, value=Val) as m:
        m[7] = Val(1, 2)
        v = m[7]
        assert (v.a, v.b) == (1, 2)
        assert list(m.keys()) == [7]


def test_array_and_len() -> None:
    with Map.create(MapType.ARRAY, 4, 4, 8) as m:
        assert len(m) == 8
        m[3] = 9
        assert int.from_bytes(m[3], "little") == 9
        assert int.from_bytes(m[0], "little") == 0
        with pytest.raises(bpfkit.KernelError):
            m[8] = 1  # out of range -> E2BIG
        m.clear()
        assert int.from_bytes(m[3], "little") == 0


def test_percpu_values() -> None:
    n = possible_cpus()
    for t in (MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH):
        with Map.create(t, 4, 4, 4) as m:
            m[0] = [i.to_bytes(4, "little") for i in range(n)]
            vals = m[0]
            assert isinstance(vals, list) and len(vals) == n
            assert [int.from_bytes(v, "little") for v in vals] == list(range(n))
            m[1] = 7  # same value on every CPU
            assert all(int.from_bytes(v, "little") == 7 for v in m[1])


@pytest.mark.parametrize("t", [MapType.LRU_HASH, MapType.HASH])
def test_lru_and_nopreall(t: MapType) -> None:
    flags = BPF_F_NO_PREALLOC if t == MapType.HASH else 0
    size = 128 if t == MapType.LRU_HASH else 4
    with Map.create(t, 8, 8, size, flags=flags) as m:
        for i in range(4):
            m[i] = i
        if t == MapType.LRU_HASH:
            for i in range(4, 1000):
                m[i] = i  # evicts the least recently used
            assert len(m) <= size
        else:
            with pytest.raises(bpfkit.KernelError):
                m[99] = 1  # E2BIG: full


def test_lpm_trie() -> None:
    # key: u32 prefixlen + 4 bytes IPv4
    with Map.create(MapType.LPM_TRIE, 8, 4, 16, flags=BPF_F_NO_PREALLOC) as m:
        def k(plen: int, ip: str) -> bytes:
            return plen.to_bytes(4, "little") + socket.inet_aton(ip)
        m[k(8, "10.0.0.0")] = 1
        m[k(24, "10.1.2.0")] = 2
        assert int.from_bytes(m[k(32, "10.1.2.3")], "little") == 2
        assert int.from_bytes(m[k(32, "10.9.9.9")], "little") == 1
        assert m.get(k(32, "11.0.0.1")) is None


@pytest.mark.parametrize("t,order", [(MapType.QUEUE, [1, 2, 3]), (MapType.STACK, [3, 2, 1])])
def test_queue_stack(t: MapType, order: list[int]) -> None:
    with Map.create(t, 0, 4, 8) as q:
        for i in (1, 2, 3):
            q.push(i)
        assert int.from_bytes(q.peek(), "little") == order[0]
        assert [int.from_bytes(q.pop(), "little") for _ in range(3)] == order
        assert q.pop() is None


def test_bloom_filter() -> None:
    with Map.create(MapType.BLOOM_FILTER, 0, 4, 100, map_extra=3) as b:
        b.push(42)
        assert b.contains_value(42)


def test_ringbuf_and_user_ringbuf_create() -> None:
    for t in (MapType.RINGBUF, MapType.USER_RINGBUF):
        with Map.create(t, 0, 0, 4096 * 4) as m:
            assert m.info().type == t


def test_perf_event_array_and_stack_trace() -> None:
    with Map.create(MapType.PERF_EVENT_ARRAY, 4, 4, possible_cpus()) as m:
        assert m.info().max_entries == possible_cpus()
    with Map.create(MapType.STACK_TRACE, 4, 8 * 127, 128) as m:
        assert m.next_key() is None


def test_prog_array_holds_program() -> None:
    from bpfkit import Program, ProgramType, asm
    with Program.load(ProgramType.SOCKET_FILTER, [asm.mov64_imm(asm.R0, 1), asm.exit()]) as p, \
            Map.create(MapType.PROG_ARRAY, 4, 4, 4) as pa:
        pa[0] = p  # programs are stored by fd
        assert int.from_bytes(pa[0], "little") == p.info().id  # and read back as ids


def test_map_in_map() -> None:
    with Map.create(MapType.ARRAY, 4, 4, 1) as inner, \
            Map.create(MapType.ARRAY_OF_MAPS, 4, 4, 2, inner_map=inner) as outer, \
            Map.create(MapType.HASH_OF_MAPS, 4, 4, 2, inner_map=inner) as hom:
        outer[0] = inner
        hom[5] = inner
        with outer.map_fd_of(0) as again:
            assert again.info().id == inner.info().id
        assert int.from_bytes(hom[5], "little") == inner.info().id


def test_storage_maps() -> None:
    # task/sk/inode storage need BTF for their value type; creating without BTF must fail
    # with a KernelError that names the map, not a crash.
    with pytest.raises(bpfkit.KernelError) as ei:
        Map.create(MapType.TASK_STORAGE, 4, 4, 0, flags=BPF_F_NO_PREALLOC, name="ts")
    assert "'ts'" in str(ei.value)


def test_sockmap_sockhash_devmap_cpumap_xskmap() -> None:
    with Map.create(MapType.SOCKMAP, 4, 4, 4) as sm, Map.create(MapType.SOCKHASH, 4, 4, 4) as sh:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        cli = socket.create_connection(srv.getsockname())
        conn, _ = srv.accept()
        try:
            sm[0] = cli.fileno()
            sh[1] = conn.fileno()
            assert len(sh) == 1
        finally:
            for s in (cli, conn, srv):
                s.close()
    with Map.create(MapType.DEVMAP, 4, 4, 4) as dm:
        dm[0] = 1  # loopback ifindex
        assert int.from_bytes(dm[0], "little") == 1
    with Map.create(MapType.CPUMAP, 4, 4, possible_cpus()) as cm:
        cm[0] = 192  # queue size
    with Map.create(MapType.XSKMAP, 4, 4, 4) as xm:
        assert xm.info().type == MapType.XSKMAP
    with Map.create(MapType.DEVMAP_HASH, 4, 4, 4) as dh:
        dh[10] = 1


def test_arena_map() -> None:
    from bpfkit.attach.features import has_map_type
    probe = has_map_type(MapType.ARENA)
    if not probe:
        pytest.skip(f"this kernel refuses ARENA maps: {probe.reason}")
    with Map.create(MapType.ARENA, 0, 0, 10, flags=BPF_F_MMAPABLE, map_extra=0) as a:
        assert a.info().type == MapType.ARENA


def test_batch_matches_single() -> None:
    with Map.create(MapType.HASH, 4, 8, 10000) as m:
        n = m.update_batch({i: i * 3 for i in range(5000)})
        assert n == 5000
        single = {k: m[k] for k in m._raw_keys()}
        batch = dict(m.items_batch(chunk=333))
        assert batch == single and len(batch) == 5000
        assert m.delete_batch([i for i in range(0, 5000, 2)]) == 2500
        assert len(m) == 2500
        drained = m.lookup_and_delete_batch()
        assert len(drained) == 2500 and len(m) == 0


def test_pin_and_reopen() -> None:
    path = f"/sys/fs/bpf/bpfkit_test_{os.getpid()}"
    with Map.create(MapType.HASH, 4, 8, 8) as m:
        m[1] = 2
        m.pin(path)
        try:
            with Map.from_pin(path) as same:
                assert same[1] == m[1]
                assert same.info().id == m.info().id
            with Map.from_id(m.info().id) as byid:
                assert byid[1] == m[1]
        finally:
            os.unlink(path)
    assert not os.path.exists(path)


def test_freeze_and_mmap() -> None:
    with Map.create(MapType.ARRAY, 4, 8, 4, flags=BPF_F_MMAPABLE) as m:
        mm = m.mmap()
        mm[8:16] = (77).to_bytes(8, "little")
        assert int.from_bytes(m[1], "little") == 77
        m[2] = 5
        assert int.from_bytes(mm[16:24], "little") == 5
    with Map.create(MapType.ARRAY, 4, 8, 1) as f:
        f[0] = 1
        f.freeze()
        with pytest.raises(bpfkit.PermissionDenied):
            f[0] = 2


def test_closed_map_errors_and_gc_warning() -> None:
    m = Map.create(MapType.ARRAY, 4, 4, 1)
    m.close()
    m.close()  # idempotent
    with pytest.raises(ValueError):
        m[0] = 1
    leaky = Map.create(MapType.ARRAY, 4, 4, 1, name="leaky")
    with pytest.warns(ResourceWarning, match="leaky"):
        leaky.__del__()
