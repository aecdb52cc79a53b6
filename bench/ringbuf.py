#!/usr/bin/env python3
"""Ring buffer consumption speed: bpfkit's modes against libbpf's ring_buffer__poll in C.

A BPF program (XDP, run with BPF_PROG_TEST_RUN and a big repeat) writes 8-byte records
holding a sequence number and counts its own failed outputs.  For each mode we report

* drain:  events/s when consuming a pre-filled ring (consumer cost alone);
* live:   events/s with the producer running concurrently in another thread, and the
          records the producer could not write (drops; zero when the reader keeps up);
* decode: per-record decode cost in microseconds (ctypes / struct callable vs bytes).

The C consumer is compiled at run time with gcc -lbpf (Debian's libbpf-dev).  Run as root:
    .venv/bin/python bench/ringbuf.py [N_MILLIONS]
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

from _summary import record

from bpfkit import Map, MapType, Program, ProgramType
from bpfkit import asm as A
from bpfkit.readers import RingBuffer

C_CONSUMER = r"""
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long count, sum;
static double t_first, t_last;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_sample(void *ctx, void *data, size_t size) {
    if (!count) t_first = now();
    sum += *(unsigned long long *)data;
    count++;
    return 0;
}

int main(int argc, char **argv) {
    int fd = atoi(argv[1]);
    unsigned long long want = strtoull(argv[2], NULL, 10);
    struct ring_buffer *rb = ring_buffer__new(fd, on_sample, NULL, NULL);
    if (!rb) { perror("ring_buffer__new"); return 1; }
    printf("ready\n"); fflush(stdout);
    int idle = 0;
    while (count < want && idle < 30) {
        int n = ring_buffer__poll(rb, 100);
        if (n < 0) { fprintf(stderr, "poll: %d\n", n); break; }
        idle = n ? 0 : idle + 1;
        t_last = now();
    }
    printf("%llu %.6f\n", count, t_last - t_first);
    ring_buffer__free(rb);
    return 0;
}
"""


def producer_prog(out: Map, cnt: Map, perf: bool = False) -> Program:
    """seq = cnt[0]++; output 8 bytes; on failure cnt[1]++ (XDP, for test_run repeat)."""
    code: list[A.Instruction | str] = [
        A.mov64_reg(A.R9, A.R1),
        A.st_mem(A.BPF_W, A.R10, -4, 0),
        A.mov64_reg(A.R2, A.R10), A.alu64_imm(A.BPF_ADD, A.R2, -4),
        A.ld_map_fd(A.R1, cnt.fd), A.call("map_lookup_elem"),
        A.jmp_imm(A.BPF_JEQ, A.R0, 0, "out"),
        A.mov64_reg(A.R6, A.R0), A.mov64_imm(A.R7, 1),
        A.atomic_op(A.BPF_DW, A.BPF_ADD | A.BPF_FETCH, A.R6, A.R7, 0),
        A.stx_mem(A.BPF_DW, A.R10, A.R7, -16),
    ]
    if perf:
        code += [A.mov64_reg(A.R1, A.R9), A.ld_map_fd(A.R2, out.fd), A.mov32_imm(A.R3, -1),
                 A.mov64_reg(A.R4, A.R10), A.alu64_imm(A.BPF_ADD, A.R4, -16),
                 A.mov64_imm(A.R5, 8), A.call("perf_event_output")]
    else:
        code += [A.ld_map_fd(A.R1, out.fd), A.mov64_reg(A.R2, A.R10),
                 A.alu64_imm(A.BPF_ADD, A.R2, -16), A.mov64_imm(A.R3, 8), A.mov64_imm(A.R4, 0),
                 A.call("ringbuf_output")]
    code += [A.jmp_imm(A.BPF_JEQ, A.R0, 0, "out"),
             A.mov64_imm(A.R1, 1), A.atomic_op(A.BPF_DW, A.BPF_ADD, A.R6, A.R1, 8),
             "out", A.mov64_imm(A.R0, 2), A.exit()]
    return Program.load(ProgramType.XDP, A.assemble(code), name="bench_prod")


class Producer:
    """Runs the program ``n`` times in a thread (test_run releases the GIL)."""

    def __init__(self, prog: Program, n: int, chunk: int = 100_000) -> None:
        self.prog, self.n, self.chunk = prog, n, chunk
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        left = self.n
        while left > 0:
            k = min(left, self.chunk)
            self.prog.test_run(bytes(64), repeat=k)
            left -= k

    def start(self) -> Producer:
        self.thread.start()
        return self

    def alive(self) -> bool:
        return self.thread.is_alive()


def counters(cnt: Map) -> tuple[int, int]:
    a, b = struct.unpack("<QQ", cnt[0])
    return a, b


def reset(cnt: Map) -> None:
    cnt[0] = bytes(16)


def build_c(src: str, name: str, tmp: str) -> str | None:
    gcc = shutil.which("gcc")
    if gcc is None or not os.path.exists("/usr/include/bpf/libbpf.h"):
        return None
    path = os.path.join(tmp, name + ".c")
    with open(path, "w") as f:
        f.write(src)
    exe = os.path.join(tmp, name)
    r = subprocess.run([gcc, "-O2", "-o", exe, path, "-lbpf"], capture_output=True, text=True)
    if r.returncode:
        print(f"(C consumer did not build: {r.stderr.strip()[:200]})")
        return None
    return exe


def run_c(exe: str, fd: int, want: int, prog: Program, prefill: bool) -> tuple[int, float]:
    """Start the C consumer on ``fd``; produce ``want`` records; return (count, seconds)."""
    if prefill:
        Producer(prog, want).start().thread.join()
    p = subprocess.Popen([exe, str(fd), str(want)], pass_fds=(fd,), stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    if not prefill:
        Producer(prog, want).start().thread.join()
    out, _ = p.communicate(timeout=120)
    p.stdout.close()
    count, secs = out.split()
    return int(count), float(secs)


def drain(rb: RingBuffer, mode: str, n: int) -> tuple[int, float]:
    """Consume ``n`` pre-filled records in ``mode``; (count, seconds)."""
    got = 0

    def cb(_rec: object) -> None:
        nonlocal got
        got += 1

    def col(b: object) -> None:
        nonlocal got
        got += len(b.column("Q"))  # type: ignore[attr-defined]

    def views(b: object) -> None:
        nonlocal got
        for v in b:  # type: ignore[attr-defined]
            got += len(v) == 8

    t0 = time.perf_counter()
    if mode in ("callback", "callback+ctypes", "callback+struct"):
        while got < n and rb.consume(cb):
            pass
    elif mode == "iterator":
        for _ in rb.read(timeout=0):
            got += 1
    elif mode == "batch (column)":
        while got < n and rb.consume_batch(col):
            pass
    elif mode == "batch (views)":
        while got < n and rb.consume_batch(views):
            pass
    return got, time.perf_counter() - t0


def live(rb: RingBuffer, mode: str, prog: Program, n: int) -> tuple[int, float]:
    got = 0

    def cb(_rec: object) -> None:
        nonlocal got
        got += 1

    def col(b: object) -> None:
        nonlocal got
        got += len(b.column("Q"))  # type: ignore[attr-defined]

    prod = Producer(prog, n)
    t0 = time.perf_counter()
    prod.start()
    while prod.alive() or rb.available() or rb._pending:
        if mode == "batch (column)":
            if not rb.consume_batch(col):
                with rb.batch(timeout=0.05) as b:
                    col(b)
        elif mode == "iterator":
            for _ in rb.read(timeout=0.05):
                got += 1
                if got == n:
                    break
        else:
            rb.poll(cb, timeout=0.05)
    return got, time.perf_counter() - t0


def main() -> None:
    n = int(float(sys.argv[1]) * 1_000_000) if len(sys.argv) > 1 else 2_000_000
    ring = 1 << 25  # 32 MiB: 2M 16-byte records fit, so a pre-filled drain loses nothing
    n_fill = min(n, ring // 16)
    results: dict[str, float] = {}
    live_rates: dict[str, float] = {}
    with Map.create(MapType.RINGBUF, 0, 0, ring, name="bench_rb") as rbm, \
            Map.create(MapType.ARRAY, 4, 16, 1, name="bench_cnt") as cnt, \
            producer_prog(rbm, cnt) as prog:
        print(f"ring buffer, 8-byte records, {n:,} events (drain: {n_fill:,} pre-filled)")
        print(f"{'mode':<22}{'drain ev/s':>14}{'live ev/s':>14}{'live drops':>12}")
        for mode, rec in (("callback", None), ("callback+ctypes", ctypes.c_uint64),
                          ("callback+struct", lambda b: struct.unpack("<Q", b)[0]),
                          ("iterator", None), ("batch (views)", None),
                          ("batch (column)", None)):
            with RingBuffer(rbm, record=rec) as rb:
                reset(cnt)
                Producer(prog, n_fill).start().thread.join()
                got, secs = drain(rb, mode, n_fill)
                assert got == n_fill, (mode, got)
                d_rate = got / secs
                results[mode] = d_rate
                reset(cnt)
                got, secs = live(rb, mode, prog, n)
                produced, drops = counters(cnt)
                assert got + drops == produced == n, (mode, got, drops, produced)
                live_rates[mode] = got / secs
                print(f"{mode:<22}{d_rate:>14,.0f}{got / secs:>14,.0f}{drops:>12,}")
        base = 1 / results["callback"]
        for mode in ("callback+ctypes", "callback+struct"):
            cost = (1 / results[mode] - base) * 1e6
            print(f"decode cost {mode.split('+')[1]:<7}: {cost:6.3f} us/record")
        print(f"raw (bytes) callback  : {base * 1e6:6.3f} us/record")

        with tempfile.TemporaryDirectory() as tmp:
            exe = build_c(C_CONSUMER, "rb_consumer", tmp)
            if exe is None:
                print("C consumer: gcc or libbpf-dev missing, no comparison")
                return
            reset(cnt)
            c_got, c_secs = run_c(exe, rbm.fd, n_fill, prog, prefill=True)
            c_drain = c_got / c_secs
            reset(cnt)
            c_live_got, c_live_secs = run_c(exe, rbm.fd, n, prog, prefill=False)
            _, c_drops = counters(cnt)
            print(f"{'C libbpf ring_buffer':<22}{c_drain:>14,.0f}"
                  f"{c_live_got / c_live_secs:>14,.0f}{c_drops:>12,}")
            c_live = c_live_got / c_live_secs
            for mode in ("callback", "iterator", "batch (column)"):
                print(f"ratio {mode:<16}: {results[mode] / c_drain:6.3f} of C drained, "
                      f"{live_rates[mode] / c_live:5.2f} of C live (live is producer-bound)")
            for mode, want in (("iterator", 5e6), ("callback", 5e6), ("batch (column)", 50e6)):
                record(f"ring buffer drain, {mode}", results[mode], "rec/s",
                       peer="libbpf C ring_buffer", peer_value=c_drain,
                       ratio=results[mode] / c_drain, target=f">= {want / 1e6:.0f} M/s",
                       ok=results[mode] >= want)


if __name__ == "__main__":
    main()
