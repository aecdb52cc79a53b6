#!/usr/bin/env python3
"""Perf buffer consumption speed: bpfkit.PerfBuffer against libbpf's perf_buffer__poll in C.

The producer (bench/ringbuf.py's XDP program, with bpf_perf_event_output and
BPF_F_CURRENT_CPU) runs with BPF_PROG_TEST_RUN pinned to CPU 0 while the consumer runs
concurrently.  Prints events/s received, samples the kernel reported lost
(PERF_RECORD_LOST) and the failures the program counted.  Run as root:
    .venv/bin/python bench/perfbuf.py [N_MILLIONS]
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _summary import record  # noqa: E402
from ringbuf import Producer, build_c, counters, producer_prog, reset  # noqa: E402

from bpfkit import Map, MapType  # noqa: E402
from bpfkit.readers import PerfBuffer  # noqa: E402

C_CONSUMER = r"""
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long long count, lost, sum;
static double t_first, t_last;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size) {
    if (!count) t_first = now();
    sum += *(unsigned long long *)data;
    count++;
}

static void on_lost(void *ctx, int cpu, __u64 n) { lost += n; }

int main(int argc, char **argv) {
    int fd = atoi(argv[1]);
    unsigned long long want = strtoull(argv[2], NULL, 10);
    int pages = atoi(argv[3]);
    struct perf_buffer *pb = perf_buffer__new(fd, pages, on_sample, on_lost, NULL, NULL);
    if (!pb) { perror("perf_buffer__new"); return 1; }
    printf("ready\n"); fflush(stdout);
    int idle = 0;
    while (count + lost < want && idle < 20) {
        int n = perf_buffer__poll(pb, 100);
        if (n < 0) break;
        idle = n ? 0 : idle + 1;
        t_last = now();
    }
    perf_buffer__consume(pb);
    printf("%llu %llu %.6f\n", count, lost, t_last - t_first);
    perf_buffer__free(pb);
    return 0;
}
"""


def main() -> None:
    n = int(float(sys.argv[1]) * 1_000_000) if len(sys.argv) > 1 else 1_000_000
    pages = 256  # 1 MiB per CPU
    old = os.sched_getaffinity(0)
    ncpu = os.cpu_count() or 1
    with Map.create(MapType.PERF_EVENT_ARRAY, 4, 4, ncpu, name="bench_pe") as pe, \
            Map.create(MapType.ARRAY, 4, 16, 1, name="bench_cnt") as cnt, \
            producer_prog(pe, cnt, perf=True) as prog:
        print(f"perf buffer, 8-byte samples, {n:,} events, {pages} pages per CPU")
        print(f"{'mode':<26}{'events/s':>12}{'received':>12}{'lost':>10}{'prog fails':>12}")
        rates = {}
        for mode, kw in (("callback", {}), ("callback, watermark 64K", {"watermark": 65536}),
                         ("iterator", {}),
                         ("callback+struct", {"record": lambda b: struct.unpack_from("<Q", b)[0]})):
            reset(cnt)
            with PerfBuffer(pe, page_count=pages, **kw) as pb:  # type: ignore[arg-type]
                got = 0

                def cb(_r: object) -> None:
                    nonlocal got
                    got += 1

                prod = Producer(prog, n)
                os.sched_setaffinity(0, {0})
                try:
                    t0 = time.perf_counter()
                    prod.start()  # the thread inherits CPU 0
                finally:
                    os.sched_setaffinity(0, old)
                if ncpu > 1:
                    os.sched_setaffinity(0, {1})
                try:
                    while prod.alive() or pb._has_data():
                        if mode == "iterator":
                            for _ in pb.read(timeout=0.05):
                                got += 1
                                if got + pb.lost >= n:
                                    break
                        else:
                            pb.poll(cb, timeout=0.05)
                    dt = time.perf_counter() - t0
                finally:
                    os.sched_setaffinity(0, old)
                produced, fails = counters(cnt)
                rates[mode] = got / dt
                print(f"{mode:<26}{got / dt:>12,.0f}{got:>12,}{pb.lost:>10,}{fails:>12,}")

        with tempfile.TemporaryDirectory() as tmp:
            exe = build_c(C_CONSUMER, "pb_consumer", tmp)
            if exe is None:
                print("C consumer: gcc or libbpf-dev missing, no comparison")
                return
            reset(cnt)
            p = subprocess.Popen(["taskset", "-c", "1" if ncpu > 1 else "0", exe, str(pe.fd),
                                  str(n), str(pages)], pass_fds=(pe.fd,),
                                 stdout=subprocess.PIPE, text=True)
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
            os.sched_setaffinity(0, {0})
            try:
                Producer(prog, n).start().thread.join()
            finally:
                os.sched_setaffinity(0, old)
            out, _ = p.communicate(timeout=120)
            p.stdout.close()
            c_got, c_lost, c_secs = out.split()
            _, fails = counters(cnt)
            c_rate = int(c_got) / float(c_secs)
            print(f"{'C libbpf perf_buffer':<26}{c_rate:>12,.0f}{int(c_got):>12,}"
                  f"{int(c_lost):>10,}{fails:>12,}")
            for mode, r in rates.items():
                print(f"ratio {mode:<24}: {r / c_rate:5.2f} of C")
            for mode in ("callback", "iterator"):
                record(f"perf buffer, {mode}", rates[mode], "rec/s",
                       peer="libbpf C perf_buffer", peer_value=c_rate,
                       ratio=rates[mode] / c_rate, target=">= 3 M/s", ok=rates[mode] >= 3e6)


if __name__ == "__main__":
    main()
