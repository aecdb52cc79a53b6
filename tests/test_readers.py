"""Ring buffers, perf buffers, user ring buffers and trace_pipe against the real kernel.

Producers are BPF programs built with bpfkit.asm and run with BPF_PROG_TEST_RUN; each
record carries a sequence number from an atomic counter so order and completeness can
be checked, and the program counts its own failed outputs so drops can be reconciled.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
import threading
import time
import uuid

import pytest

from bpfkit import Map, MapType, Program, ProgramType
from bpfkit import asm as A
from bpfkit import syscall as sc
from bpfkit.errors import BpfkitError
from bpfkit.readers import PerfBuffer, RingBuffer, UserRingBuffer

pytestmark = pytest.mark.requires_root

PAGE = os.sysconf("SC_PAGE_SIZE")


def producer(out: Map, cnt: Map, size: int = 8, *, perf: bool = False,
             discard_odd: bool = False) -> list[A.Instruction]:
    """seq = cnt[0]++ ; emit a ``size``-byte record (seq at both ends); on failure cnt[1]++.

    ``perf``: bpf_perf_event_output(ctx, out, BPF_F_CURRENT_CPU, buf, size);
    ``discard_odd``: reserve/submit, discarding odd sequence numbers.
    """
    assert size % 8 == 0 and 8 <= size <= 256
    buf = -size - 8
    code: list[A.Instruction | str] = [
        A.mov64_reg(A.R9, A.R1),
        A.st_mem(A.BPF_W, A.R10, -4, 0),
        A.mov64_reg(A.R2, A.R10), A.alu64_imm(A.BPF_ADD, A.R2, -4),
        A.ld_map_fd(A.R1, cnt.fd), A.call("map_lookup_elem"),
        A.jmp_imm(A.BPF_JEQ, A.R0, 0, "out"),
        A.mov64_reg(A.R6, A.R0),
        A.mov64_imm(A.R7, 1),
        A.atomic_op(A.BPF_DW, A.BPF_ADD | A.BPF_FETCH, A.R6, A.R7, 0),  # r7 = seq
    ]
    if discard_odd:
        code += [
            A.ld_map_fd(A.R1, out.fd), A.mov64_imm(A.R2, 16), A.mov64_imm(A.R3, 0),
            A.call("ringbuf_reserve"),
            A.jmp_imm(A.BPF_JEQ, A.R0, 0, "fail"),
            A.stx_mem(A.BPF_DW, A.R0, A.R7, 0), A.stx_mem(A.BPF_DW, A.R0, A.R7, 8),
            A.mov64_reg(A.R1, A.R0), A.mov64_imm(A.R2, 0),
            A.mov64_reg(A.R3, A.R7), A.alu64_imm(A.BPF_AND, A.R3, 1),
            A.jmp_imm(A.BPF_JNE, A.R3, 0, "discard"),
            A.call("ringbuf_submit"), A.ja("out"),
            "discard", A.call("ringbuf_discard"), A.ja("out"),
        ]
    else:
        for o in range(0, size, 8):
            code.append(A.st_mem(A.BPF_DW, A.R10, buf + o, 0))
        code += [A.stx_mem(A.BPF_DW, A.R10, A.R7, buf),
                 A.stx_mem(A.BPF_DW, A.R10, A.R7, buf + size - 8)]
        if perf:
            code += [A.mov64_reg(A.R1, A.R9), A.ld_map_fd(A.R2, out.fd), A.mov32_imm(A.R3, -1),
                     A.mov64_reg(A.R4, A.R10), A.alu64_imm(A.BPF_ADD, A.R4, buf),
                     A.mov64_imm(A.R5, size), A.call("perf_event_output")]
        else:
            code += [A.ld_map_fd(A.R1, out.fd), A.mov64_reg(A.R2, A.R10),
                     A.alu64_imm(A.BPF_ADD, A.R2, buf), A.mov64_imm(A.R3, size),
                     A.mov64_imm(A.R4, 0), A.call("ringbuf_output")]
        code += [A.jmp_imm(A.BPF_JEQ, A.R0, 0, "out")]
    code += ["fail", A.mov64_imm(A.R1, 1), A.atomic_op(A.BPF_DW, A.BPF_ADD, A.R6, A.R1, 8),
             "out", A.mov64_imm(A.R0, 2), A.exit()]
    return A.assemble(code)


def counters(cnt: Map) -> tuple[int, int]:
    seq, fails = struct.unpack("<QQ", cnt[0])
    return seq, fails


class Rig:
    """A ring/perf map, a counter map and a producer program; closes them all."""

    def __init__(self, kind: MapType, size: int = 8, ring: int = 1 << 16,
                 discard_odd: bool = False) -> None:
        if kind == MapType.RINGBUF:
            self.out = Map.create(MapType.RINGBUF, 0, 0, ring, name="rb")
        else:
            self.out = Map.create(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count() or 1,
                                  name="pe")
        self.cnt = Map.create(MapType.ARRAY, 4, 16, 1, name="cnt")
        self.prog = Program.load(ProgramType.XDP,
                                 producer(self.out, self.cnt, size,
                                          perf=kind == MapType.PERF_EVENT_ARRAY,
                                          discard_odd=discard_odd), name="producer")

    def run(self, n: int) -> None:
        if n:
            self.prog.test_run(bytes(64), repeat=n)

    def counters(self) -> tuple[int, int]:
        return counters(self.cnt)

    def close(self) -> None:
        self.prog.close()
        self.out.close()
        self.cnt.close()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *a: object) -> None:
        self.close()


def seqs(records: list[bytes]) -> list[int]:
    return [struct.unpack_from("<Q", r)[0] for r in records]


# --------------------------------------------------------------------------- ring buffer


def test_ringbuf_callback_complete_in_order() -> None:
    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out) as rb:
        rig.run(3000)
        got: list[bytes] = []
        assert rb.poll(got.append, timeout=1) == 3000
        assert seqs(got) == list(range(3000))
        assert all(len(r) == 8 for r in got)
        assert rig.counters() == (3000, 0)
        assert rb.poll(got.append, timeout=0) == 0
        assert rb.available() == 0 and rb.lost == 0 and rb.discarded == 0


def test_ringbuf_iterator_and_ctypes_record() -> None:
    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out, record=ctypes.c_uint64) as rb:
        rig.run(50)
        assert list(rb.read(timeout=0.2)) == list(range(50))

        class Rec(ctypes.Structure):
            _fields_ = [("seq", ctypes.c_uint64)]

        rb2 = RingBuffer(rig.out, record=lambda b: ("seq", int.from_bytes(b, "little")))
        with rb2:
            rig.run(3)
            assert list(rb2.read(timeout=0)) == [("seq", 50), ("seq", 51), ("seq", 52)]
        with RingBuffer(rig.out, record=Rec) as rb3:
            rig.run(2)
            assert [r.seq for r in rb3.read(timeout=0)] == [53, 54]


def test_ringbuf_wraparound_records_intact() -> None:
    size = 256  # 264 bytes per record: never divides the 4096-byte ring evenly
    with Rig(MapType.RINGBUF, size=size, ring=PAGE) as rig, RingBuffer(rig.out) as rb:
        got: list[bytes] = []
        wrapped = 0
        for _ in range(40):
            pos = rb._rings[0].pos
            rig.run(7)  # 7 * 264 = 1848 bytes: fits, starts anywhere
            for i in range(7):
                start = (pos + i * (size + 8)) % PAGE
                wrapped += start + size + 8 > PAGE
            rb.consume(got.append)
        assert wrapped > 5
        assert len(got) == 280
        for i, r in enumerate(got):
            assert len(r) == size
            a, b = struct.unpack_from("<Q", r)[0], struct.unpack_from("<Q", r, size - 8)[0]
            assert a == b == i
            assert r[8:size - 8] == bytes(size - 16)


def test_ringbuf_full_drops_match_program_failures() -> None:
    with Rig(MapType.RINGBUF, size=64, ring=PAGE) as rig, RingBuffer(rig.out) as rb:
        rig.run(500)  # 72 bytes each: only 56 fit in 4096
        got: list[bytes] = []
        rb.consume(got.append)
        seq, fails = rig.counters()
        assert seq == 500
        assert len(got) == 56 and fails == 500 - 56
        assert seqs(got) == list(range(56))
        rig.run(10)  # space is back once consumed
        rb.consume(got.append)
        assert seqs(got)[56:] == list(range(500, 510))


def test_ringbuf_discarded_records_skipped() -> None:
    with Rig(MapType.RINGBUF, discard_odd=True) as rig, RingBuffer(rig.out) as rb:
        rig.run(101)
        got: list[bytes] = []
        rb.consume(got.append)
        assert seqs(got) == list(range(0, 101, 2))
        assert rb.discarded == 50
        assert rig.counters() == (101, 0)


def test_ringbuf_batch_zero_copy() -> None:
    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out) as rb:
        rig.run(1000)
        kept = []

        def fn(b):  # type: ignore[no-untyped-def]
            assert b.size == 8
            kept.append(b[0])
            kept.append(b.column_view("Q"))
            assert b.column("Q") == list(range(len(b)))
            assert [t[0] for t in b.unpack("Q")] == list(range(len(b)))
            assert [int.from_bytes(v, "little") for v in b] == list(range(len(b)))
            assert b.tobytes()[5] == struct.pack("<Q", 5)

        assert rb.consume_batch(fn) == 1000
        with pytest.raises(ValueError):
            kept[0].tobytes()  # released at commit: never reads reused ring memory
        with pytest.raises(ValueError):
            kept[1].tolist()
        assert rb.available() == 0
        kept.clear()
        rig.run(3)
        with rb.batch() as b:
            assert [bytes(v) for v in b] == [struct.pack("<Q", i) for i in (1000, 1001, 1002)]
            assert b.column("Q") == [1000, 1001, 1002]  # few records: the list path
        assert rb.available() == 0
        with rb.batch() as b:
            assert len(b) == 0


def test_ringbuf_batch_mixed_sizes_and_discards() -> None:
    with Rig(MapType.RINGBUF, discard_odd=True) as rig, Rig(MapType.RINGBUF, size=24) as r2, \
            RingBuffer(rig.out) as rb:
        rb.add(r2.out)
        rig.run(20)
        r2.run(20)
        got: list[int] = []
        rb.consume_batch(lambda b: got.extend(b.column("Q", b.length(0) - 8)))
        assert got[:10] == list(range(0, 20, 2))  # discarded records skipped
        assert got[10:] == list(range(20))  # seq at the end of 24-byte records
        assert rb.discarded == 10


def test_several_ring_buffers_and_per_ring_callbacks() -> None:
    with Rig(MapType.RINGBUF) as r1, Rig(MapType.RINGBUF) as r2:
        a: list[bytes] = []
        b: list[bytes] = []
        with RingBuffer([r1.out]) as rb:
            rb.add(r2.out, callback=b.append, record=lambda x: x + b"!")
            r1.run(5)
            r2.run(3)
            assert rb.poll(a.append, timeout=1) == 8  # poll's callback overrides per-ring
            assert len([x for x in a if x.endswith(b"!")]) == 3
            r2.run(2)
            assert rb.poll(timeout=1) == 2
            assert b == [struct.pack("<Q", 3) + b"!", struct.pack("<Q", 4) + b"!"]
            assert rb.fileno() >= 0


def test_ringbuf_poll_timeout_and_stop_from_thread() -> None:
    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out) as rb:
        t0 = time.monotonic()
        assert rb.poll(timeout=0.2) == 0
        assert time.monotonic() - t0 >= 0.15
        th = threading.Timer(0.1, rb.stop)
        th.start()
        t0 = time.monotonic()
        assert list(rb.read(timeout=None)) == []  # ended by stop(), not a timeout
        assert time.monotonic() - t0 < 5
        th.join()
        # a producer in another thread wakes the blocked poll (the GIL is released)
        th2 = threading.Timer(0.1, rig.run, args=(4,))
        th2.start()
        got: list[bytes] = []
        while len(got) < 4:
            rb.poll(got.append, timeout=5)
        th2.join()
        assert seqs(got) == [0, 1, 2, 3]


def test_ringbuf_callback_exception_keeps_remaining_records() -> None:
    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out) as rb:
        rig.run(10)
        seen: list[int] = []

        def cb(r: bytes) -> None:
            s = struct.unpack("<Q", r)[0]
            seen.append(s)
            if s == 3:
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            rb.poll(cb)
        rb.poll(cb)
        assert seen == list(range(10))


def test_ringbuf_asyncio() -> None:
    async def main(rb: RingBuffer, rig: Rig) -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, rig.run, 5)
        got = []
        async for r in rb.read_async(timeout=0.5):
            got.append(struct.unpack("<Q", r)[0])
            if len(got) == 5:
                break
        loop.call_later(0.05, rig.run, 2)
        n = await rb.poll_async(lambda r: None, timeout=2)
        none = await rb.poll_async(timeout=0.05)
        return got, n + 100 * none

    with Rig(MapType.RINGBUF) as rig, RingBuffer(rig.out) as rb:
        got, n = asyncio.run(main(rb, rig))
        assert got == [0, 1, 2, 3, 4]
        assert n == 2


def test_ringbuf_rejects_wrong_map_and_btf_name_without_btf() -> None:
    with Map.create(MapType.ARRAY, 4, 8, 1) as m:
        with pytest.raises(BpfkitError, match="not a RINGBUF"):
            RingBuffer(m)
    with Map.create(MapType.RINGBUF, 0, 0, PAGE) as m:
        with pytest.raises(BpfkitError, match="no BTF"):
            RingBuffer(m, record="struct event")
        with pytest.raises(BpfkitError):
            RingBuffer(m, record=42)


# --------------------------------------------------------------------------- perf buffer


@pytest.fixture
def on_cpu0():  # type: ignore[no-untyped-def]
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    yield 0
    os.sched_setaffinity(0, old)


def test_perfbuf_samples_in_order_with_cpu(on_cpu0: int) -> None:
    with Rig(MapType.PERF_EVENT_ARRAY) as rig, \
            PerfBuffer(rig.out, with_cpu=True, page_count=16) as pb:
        rig.run(500)
        got: list[tuple[int, bytes]] = []
        assert pb.poll(got.append, timeout=1) == 500
        assert {c for c, _ in got} == {0}
        # raw data is padded by the kernel to 4 bytes short of a multiple of 8
        assert all(len(r) == 12 for _, r in got)
        assert seqs([r for _, r in got]) == list(range(500))
        assert pb.lost == 0


def test_perfbuf_lost_counts_match_program_failures(on_cpu0: int) -> None:
    losts: list[tuple[int, int]] = []
    with Rig(MapType.PERF_EVENT_ARRAY, size=64) as rig, \
            PerfBuffer(rig.out, page_count=1, lost_callback=lambda c, n: losts.append((c, n)),
                       record=lambda b: struct.unpack_from("<Q", b)[0]) as pb:
        rig.run(300)  # 80-byte samples: about 51 fit in one page
        got: list[int] = []
        pb.consume(got.append)
        rig.run(1)  # the kernel writes PERF_RECORD_LOST before the next sample
        pb.consume(got.append)
        seq, fails = rig.counters()
        assert seq == 301
        assert fails > 0 and len(got) + fails == 301
        assert pb.lost == fails == sum(n for _, n in losts)
        assert pb.lost_per_cpu[0] == fails
        assert got[-1] == 300 and got[:-1] == list(range(len(got) - 1))


def test_perfbuf_wraparound_reassembled(on_cpu0: int) -> None:
    size = 96  # 8 + 4 + 100 = 112-byte records wrap around a 4096-byte ring
    with Rig(MapType.PERF_EVENT_ARRAY, size=size) as rig, PerfBuffer(rig.out, page_count=1) as pb:
        got: list[bytes] = []
        for _ in range(30):
            rig.run(9)
            pb.consume(got.append)
        assert pb.lost == 0
        assert len(got) == 270
        for i, r in enumerate(got):
            assert struct.unpack_from("<Q", r)[0] == i
            assert struct.unpack_from("<Q", r, size - 8)[0] == i


def test_perfbuf_iterator_watermark_and_asyncio(on_cpu0: int) -> None:
    with Rig(MapType.PERF_EVENT_ARRAY) as rig, \
            PerfBuffer(rig.out, watermark=PAGE, record=lambda b: b[:8]) as pb:
        rig.run(10)
        assert seqs(list(pb.read(timeout=0))) == list(range(10))

        async def main() -> list[bytes]:
            asyncio.get_running_loop().call_later(0.05, rig.run, 3)
            out = []
            deadline = time.monotonic() + 3
            while len(out) < 3 and time.monotonic() < deadline:
                await pb.poll_async(out.append, timeout=0.2)
            return out

        assert seqs(asyncio.run(main())) == [10, 11, 12]


def test_perfbuf_map_entries_removed_on_close() -> None:
    with Map.create(MapType.PERF_EVENT_ARRAY, 4, 4, os.cpu_count() or 1) as m:
        with PerfBuffer(m) as pb:
            assert pb.lost == 0 and set(pb.lost_per_cpu) == set(range(len(pb.lost_per_cpu)))
        assert m.delete(0) is False  # the reader removed the entries it set
        with pytest.raises(BpfkitError):
            PerfBuffer(m, page_count=3)


# --------------------------------------------------------------------------- user ring buffer


def drain_prog(urb: Map, out: Map) -> Program:
    """bpf_user_ringbuf_drain with a callback echoing each sample's first 8 bytes to ``out``.

    Callbacks need BTF func_info, so a four-function BTF is built here.
    """
    from bpfkit.btf import BTF_INT_SIGNED, Func, FuncProto, Int, Param, Pointer, Spec
    spec = Spec.build([Int(4, BTF_INT_SIGNED, name="int"), Pointer(0),
                       FuncProto(1, [Param("ctx", 2)]), Func(3, name="prog"),
                       Int(8, BTF_INT_SIGNED, name="long"),
                       FuncProto(5, [Param("dynptr", 2), Param("ctx", 2)]), Func(6, name="cb")])
    insns = A.assemble([
        A.ld_map_fd(A.R1, urb.fd), A.ld_func(A.R2, "cb"), A.mov64_imm(A.R3, 0),
        A.mov64_imm(A.R4, 0), A.call("user_ringbuf_drain"), A.exit(),
        "cb",
        A.mov64_reg(A.R3, A.R1),
        A.mov64_reg(A.R1, A.R10), A.alu64_imm(A.BPF_ADD, A.R1, -8),
        A.mov64_imm(A.R2, 8), A.mov64_imm(A.R4, 0), A.mov64_imm(A.R5, 0),
        A.call("dynptr_read"),
        A.jmp_imm(A.BPF_JNE, A.R0, 0, "skip"),
        A.ld_map_fd(A.R1, out.fd), A.mov64_reg(A.R2, A.R10), A.alu64_imm(A.BPF_ADD, A.R2, -8),
        A.mov64_imm(A.R3, 8), A.mov64_imm(A.R4, 0), A.call("ringbuf_output"),
        "skip", A.mov64_imm(A.R0, 0), A.exit(),
    ])
    cb_slot = A.slot_offsets(insns)[6]
    btf_fd, _ = sc.btf_load(spec.to_bytes())
    try:
        return Program.load(ProgramType.XDP, insns, btf_fd=btf_fd, name="drain",
                            func_info=struct.pack("<IIII", 0, 4, cb_slot, 7),
                            func_info_rec_size=8)
    finally:
        os.close(btf_fd)


def test_user_ringbuf_round_trip() -> None:
    with Map.create(MapType.USER_RINGBUF, 0, 0, PAGE, name="urb") as um, \
            Map.create(MapType.RINGBUF, 0, 0, PAGE * 4, name="echo") as om, \
            drain_prog(um, om) as prog, UserRingBuffer(um) as urb, \
            RingBuffer(om, record=ctypes.c_uint64) as rb:
        for i in range(6):
            s = urb.reserve(8 + i)
            assert s is not None
            s.data[:8] = struct.pack("<Q", 100 + i)
            if i == 2:
                s.discard()
            else:
                s.submit()
        with urb.reserve(8) as s:  # type: ignore[union-attr]
            s.data[:] = struct.pack("<Q", 7)
        assert urb.write(struct.pack("<Q", 8))
        assert prog.test_run(bytes(64)).retval == 7  # samples drained (discard not counted)
        assert list(rb.read(timeout=0)) == [100, 101, 103, 104, 105, 7, 8]

        # fill it: reserve fails (None) when full, works again once the kernel drains
        n = 0
        while urb.write(bytes(64)):
            n += 1
        assert n == PAGE // 72 and urb.reserve(64) is None
        assert prog.test_run(bytes(64)).retval == n
        assert urb.write(bytes(64))
        # a reserved, unsubmitted sample stops the drain (BUSY)
        s = urb.reserve(16)
        assert s is not None
        prog.test_run(bytes(64))
        assert prog.test_run(bytes(64)).retval == 0
        s.submit()
        assert prog.test_run(bytes(64)).retval == 1
        list(rb.read(timeout=0))


# --------------------------------------------------------------------------- trace_pipe


def printk_prog(marker: str, pid: int) -> Program:
    """raw_tp sys_enter: if tgid == pid and syscall == getpid: printk("<marker> %d", n)."""
    fmt = (marker + " %d\n").encode() + b"\0"
    fmt += b"\0" * (-len(fmt) % 8)
    n = len(fmt)
    code: list[A.Instruction | str] = [
        A.ldx_mem(A.BPF_DW, A.R6, A.R1, 8),  # args[1] = syscall id
        A.jmp_imm(A.BPF_JNE, A.R6, 39, "out"),  # __NR_getpid on x86_64
        A.call("get_current_pid_tgid"), A.alu64_imm(A.BPF_RSH, A.R0, 32),
        A.jmp_imm(A.BPF_JNE, A.R0, pid, "out"),
    ]
    for i in range(0, n, 8):
        code += [A.ld_imm64(A.R1, int.from_bytes(fmt[i:i + 8], "little")),
                 A.stx_mem(A.BPF_DW, A.R10, A.R1, -n + i)]
    code += [A.mov64_reg(A.R1, A.R10), A.alu64_imm(A.BPF_ADD, A.R1, -n),
             A.mov64_imm(A.R2, len(marker) + 5), A.mov64_imm(A.R3, 42),
             A.call("trace_printk"), "out", A.mov64_imm(A.R0, 0), A.exit()]
    return Program.load(ProgramType.RAW_TRACEPOINT, A.assemble(code), name="printk")


def test_trace_pipe_lines_from_bpf_trace_printk() -> None:
    if ctypes.sizeof(ctypes.c_void_p) != 8 or os.uname().machine != "x86_64":
        pytest.skip("the test program hard-codes x86_64's getpid syscall number")
    from bpfkit.readers.tracepipe import TracePipe, parse_line
    marker = "bpfkit" + uuid.uuid4().hex[:8]
    with printk_prog(marker, os.getpid()) as prog, \
            TracePipe(pid=os.getpid(), match=marker) as tp:
        link_fd = sc.raw_tracepoint_open("sys_enter", prog.fd)
        try:
            for _ in range(3):
                os.getpid()
        finally:
            os.close(link_fd)
        lines = tp.read(timeout=5, count=3)
        assert len(lines) == 3, lines
        for t in lines:
            assert t.pid == os.getpid()
            assert t.message == f"{marker} 42"
            assert t.event == "bpf_trace_printk"
            assert t.timestamp > 0 and t.cpu >= 0
            assert parse_line(t.raw) == t
        assert list(tp.lines(timeout=0.05)) == []


def test_ringbuf_record_by_btf_type_name_from_loaded_object(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    loader = pytest.importorskip("bpfkit.loader")
    obj = bpf_obj("ringbuf_event.bpf.c")
    with loader.load(str(obj)) as coll:
        prog = coll.programs["emit"]
        with RingBuffer(coll.maps["events"], record="struct event") as rb:
            prog.test_run(bytes(64), repeat=3)
            recs = list(rb.read(timeout=0))
        assert [(r.kind, r.seq, r.tag) for r in recs] == [(7, i, "bpfkit!") for i in range(3)]
        with pytest.raises(BpfkitError, match="not usable"):
            RingBuffer(coll.maps["events"], record="struct nope")
