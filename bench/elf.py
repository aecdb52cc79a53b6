"""Benchmark: how long bpfkit.elf takes to load a big binary's symbol tables.

Symbolization and uprobe attachment read the symbols of large binaries, so this
times ``ElfFile.open(path)`` + ``symbols()`` + ``dynamic_symbols()`` (cold object,
warm page cache, best of N) on the largest of /usr/bin/python3.11, libc and
libLLVM*.so, and compares it with ``readelf -sW path | wc -l`` as a reference.

Usage: python bench/elf.py [--repeat N] [--all] [PATH ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

from bpfkit.elf import ElfFile


def candidates() -> list[str]:
    paths = ["/usr/bin/python3.11", os.path.realpath(sys.executable)]
    paths += glob.glob("/usr/lib/x86_64-linux-gnu/libc.so.6")
    paths += glob.glob("/lib/x86_64-linux-gnu/libc.so.6")
    paths += glob.glob("/usr/lib/x86_64-linux-gnu/libLLVM*.so*")
    seen: dict[str, str] = {}
    for p in paths:
        real = os.path.realpath(p)
        if os.path.isfile(real) and real not in seen:
            seen[real] = p
    return sorted(seen, key=os.path.getsize, reverse=True)


def time_bpfkit(path: str, repeat: int) -> tuple[float, float, int]:
    """Best times (s) for open+both symbol tables and for symbol_map(); symbol count."""
    best_load = best_map = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        with ElfFile.open(path) as e:
            count = len(e.symbols()) + len(e.dynamic_symbols())
            t1 = time.perf_counter()
            e.symbol_map()
            t2 = time.perf_counter()
        best_load = min(best_load, t1 - t0)
        best_map = min(best_map, t2 - t1)
    return best_load, best_map, count


def time_readelf(path: str, repeat: int) -> float | None:
    if shutil.which("readelf") is None:
        return None
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(f"readelf -sW '{path}' | wc -l", shell=True, check=True,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="binaries to time (default: the largest found)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="time every candidate, not just the largest")
    args = ap.parse_args()
    paths = args.paths or candidates()
    if not paths:
        print("no candidate binaries found", file=sys.stderr)
        return 1
    if not args.paths and not args.all:
        paths = paths[:1]
    print(f"{'binary':<50} {'MB':>7} {'symbols':>8} {'load ms':>8} {'map ms':>7} "
          f"{'readelf ms':>10} {'ratio':>6}")
    for path in paths:
        load, smap, count = time_bpfkit(path, args.repeat)
        ref = time_readelf(path, args.repeat)
        ref_s = f"{ref * 1e3:10.1f}" if ref is not None else f"{'n/a':>10}"
        ratio = f"{load / ref:6.2f}" if ref else f"{'n/a':>6}"
        print(f"{path:<50} {os.path.getsize(path) / 2**20:7.1f} {count:8d} "
              f"{load * 1e3:8.1f} {smap * 1e3:7.1f} {ref_s} {ratio}")
    print("ratio = bpfkit load time / readelf time (below 1: faster than readelf)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
