"""Benchmark: index the kernel's BTF lazily and resolve ``task_struct``.

Prints wall time and memory (tracemalloc peak, RSS delta) beside the wall time of
``bpftool btf dump file /sys/kernel/btf/vmlinux > /dev/null`` (which decodes and
prints every type, so the ratio is a reference point, not a like-for-like race).

    .venv/bin/python bench/btf.py [path-to-btf] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import time
import tracemalloc

from _summary import record

from bpfkit.btf import Spec, Struct

TARGET_MS = 60.0
TARGET_MB = 30.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def index(path: str) -> Spec:
    with open(path, "rb") as f:
        data = f.read()
    return Spec.from_bytes(data, lazy=True)


def resolve_task_struct(spec: Spec) -> int:
    ts = spec.find("task_struct", Struct)
    n = 0
    for m in ts.members:
        spec.type_name(m.type)
        spec.resolve(m.type)
        n += 1
    return n


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default="/sys/kernel/btf/vmlinux")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if not os.path.exists(args.path):
        print(f"no BTF at {args.path}", file=sys.stderr)
        return 1

    # Memory first, in a fresh state: the RSS delta of one index (without tracemalloc,
    # whose own bookkeeping would inflate it), then tracemalloc peaks.
    gc.collect()
    rss0 = rss_bytes()
    spec = index(args.path)
    rss_delta = rss_bytes() - rss0
    del spec
    gc.collect()
    tracemalloc.start()
    spec = index(args.path)
    _, peak_index = tracemalloc.get_traced_memory()
    nmembers = resolve_task_struct(spec)
    _, peak_all = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = os.path.getsize(args.path)
    del spec
    gc.collect()

    t_index = best(lambda: index(args.path), args.repeat)
    held = index(args.path)
    t_resolve = best(lambda: resolve_task_struct(held.copy()), args.repeat)
    def uncached_lookup() -> None:
        held._found.clear()  # the per-name result cache: measure the string-section scan
        held.ids_by_name("task_struct")
    t_lookup = best(uncached_lookup, args.repeat)
    t_cached = best(lambda: held.ids_by_name("task_struct"), args.repeat)

    t_bpftool = None
    bpftool = shutil.which("bpftool")
    if bpftool:
        def run() -> None:
            with open(os.devnull, "w") as null:
                subprocess.run([bpftool, "btf", "dump", "file", args.path], stdout=null,
                               check=True)
        t_bpftool = best(run, max(3, args.repeat // 2))

    ms = 1e3
    mb = 1 / (1 << 20)
    print(f"BTF file          {args.path}: {size * mb:.1f} MiB, {len(held)} type ids")
    print(f"index (read+scan) {t_index * ms:7.1f} ms   (target < {TARGET_MS:.0f} ms)"
          f"{'' if t_index * ms < TARGET_MS else '  OVER TARGET'}")
    print(f"  memory          tracemalloc peak {peak_index * mb:.1f} MiB "
          f"(incl. the {size * mb:.1f} MiB file), RSS delta {rss_delta * mb:.1f} MiB "
          f"(target < {TARGET_MB:.0f} MiB)")
    print(f"name lookup       {t_lookup * 1e6:7.1f} us   (task_struct: scan of the string "
          f"section; {t_cached * 1e6:.1f} us once cached)")
    print(f"resolve members   {t_resolve * ms:7.1f} ms   ({nmembers} task_struct members: "
          f"decode + type_name + resolve; tracemalloc peak with index {peak_all * mb:.1f} MiB)")
    if t_bpftool is not None:
        print(f"bpftool dump      {t_bpftool * ms:7.1f} ms   (full text dump to /dev/null); "
              f"index/bpftool = {t_index / t_bpftool:.2f}")
    else:
        print("bpftool           not installed")
    t_first = best(lambda: index(args.path).ids_by_name("task_struct"), args.repeat)
    c_ms = libbpf_index_ms(args.path)
    print(f"index + 1st lookup {t_first * ms:6.1f} ms   (what a CO-RE load needs first)"
          + (f"; libbpf btf__parse + find_by_name_kind {c_ms:.1f} ms" if c_ms else ""))
    record("vmlinux BTF index + first name lookup", t_first * ms, "ms",
           peer="libbpf C btf__parse" if c_ms else "", peer_value=c_ms,
           ratio=t_first * ms / c_ms if c_ms else None, target="<= 15 ms",
           ok=t_first * ms <= 15)
    record("vmlinux BTF index memory (incl. the file)", peak_index * mb, "MiB",
           target="<= 15 MiB", ok=peak_index * mb <= 15)
    core_load_bench()
    return 0


C_BTF = r"""
#include <bpf/btf.h>
#include <stdio.h>
#include <time.h>
static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
int main(int argc, char **argv) {
    double best = 1e9;
    for (int i = 0; i < 7; i++) {
        double t0 = now();
        struct btf *b = btf__parse(argv[1], NULL);
        if (!b) return 1;
        if (btf__find_by_name_kind(b, "task_struct", BTF_KIND_STRUCT) <= 0) return 2;
        double t = now() - t0;
        btf__free(b);
        if (t < best) best = t;
    }
    printf("%.3f\n", best);
    return 0;
}
"""


def libbpf_index_ms(path: str) -> float | None:
    """libbpf's btf__parse + btf__find_by_name_kind on the same file, best of 7, in C."""
    import tempfile
    gcc = shutil.which("gcc")
    if gcc is None or not os.path.exists("/usr/include/bpf/btf.h"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "btf_index.c")
        with open(src, "w") as f:
            f.write(C_BTF)
        exe = os.path.join(tmp, "btf_index")
        if subprocess.run([gcc, "-O2", "-o", exe, src, "-lbpf"], capture_output=True).returncode:
            return None
        r = subprocess.run([exe, path], capture_output=True, text=True)
        return float(r.stdout) if r.returncode == 0 else None


CORE_LOAD = r"""
import time, sys
t0 = time.perf_counter()
import bpfkit
with bpfkit.load(sys.argv[1]) as c:
    t1 = time.perf_counter()
print(f"{(t1 - t0) * 1e3:.1f}")
"""


def core_load_bench() -> None:
    """A typical CO-RE tool object (reads task_struct fields): parse + CO-RE + load, timed
    in a fresh interpreter from its first line (target: < 100 ms), beside `bpftool prog
    loadall` of the same object (libbpf)."""
    import os
    import shutil
    import statistics
    import subprocess
    import tempfile
    from pathlib import Path

    if os.geteuid() != 0:
        print("CO-RE load        skipped (needs root)")
        return
    src = Path(__file__).resolve().parent.parent / "tests" / "bpf" / "core.bpf.c"
    with tempfile.TemporaryDirectory() as tmp:
        from bpfkit.build import compile_bpf
        obj = compile_bpf(src, Path(tmp) / "core.bpf.o")
        runs = [float(subprocess.run([sys.executable, "-c", CORE_LOAD, str(obj)], check=True,
                                     capture_output=True, text=True).stdout) for _ in range(5)]
        ours = statistics.median(runs)
        line = f"CO-RE load        {ours:7.1f} ms   (import bpfkit + parse + CO-RE + load of " \
               f"{src.name}, fresh interpreter; target < 100 ms)"
        bpftool = shutil.which("bpftool")
        if bpftool and os.path.ismount("/sys/fs/bpf"):
            pin = f"/sys/fs/bpf/bpfkit_bench_{os.getpid()}"
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                r = subprocess.run([bpftool, "prog", "loadall", str(obj), pin],
                                   capture_output=True)
                ts.append(time.perf_counter() - t0)
                subprocess.run(["rm", "-rf", pin])
                if r.returncode:
                    ts = []
                    break
            if ts:
                ref = statistics.median(ts) * 1e3
                line += f"\nbpftool loadall   {ref:7.1f} ms   (libbpf, whole process); " \
                        f"bpfkit/bpftool = {ours / ref:.2f}"
                record("first CO-RE load, fresh interpreter", ours, "ms",
                       peer="bpftool prog loadall", peer_value=ref, ratio=ours / ref,
                       target="<= 3x", ok=ours / ref <= 3)
        print(line)


if __name__ == "__main__":
    sys.exit(main())
