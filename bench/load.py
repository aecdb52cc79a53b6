#!/usr/bin/env python3
"""Whole-object load time: bpfkit against libbpf in C, over the compatibility corpus.

Every object in tests/corpus/bpf/ is built (bpfkit.build, cached in tests/.build/corpus),
and so is the C reference loader, tests/corpus/loader.c, with gcc against the system's
libbpf-dev.  An object counts only when both loaders load it.  For autoload variants,
the first one that loads is used: objects that need fentry load their kprobe twin on
this kernel.  Two figures are measured for each object:

* warm: open + load + close of the object in one process, repeated; the median of each
  loader, for bpfkit ``bpfkit.load(path)`` including parsing, and for libbpf
  ``bpf_object__open_file`` + ``bpf_object__load`` (``loader -n N``);
* fresh: one whole process that loads the object once. For bpfkit this is a new Python
  interpreter that imports bpfkit, reads kernel BTF and loads; for libbpf it is the C
  loader.  The median of a few runs.

The summary is the median over objects of the per-object ratio bpfkit/libbpf, and their
geometric mean.  The targets are a warm ratio of at most 1.0x and a fresh ratio of at most
3x.  Run as root:
    .venv/bin/python bench/load.py [--warm N] [--fresh N] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bpfkit
from bpfkit.errors import BpfkitError
from bpfkit.spec import PIN_BY_NAME, CollectionSpec

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
PIN_ROOT = Path("/sys/fs/bpf")
# the corpus test's own helpers: object build (cached), C loader build, autoload variants
sys.path.insert(0, str(ROOT / "tests"))
from test_corpus import build_loader, build_object, variants  # noqa: E402

FRESH_SNIPPET = (
    "import sys, bpfkit\n"
    "skip = sys.argv[2:]\n"
    "bpfkit.load(sys.argv[1], autoload={n: False for n in skip} or None).close()\n"
)


def unpin(obj: Path) -> None:
    """Corpus maps pinned by name are named corpus_*; each load starts without them."""
    for n, m in CollectionSpec.from_file(obj).maps.items():
        if m.pinning == PIN_BY_NAME and n.startswith("corpus_"):
            (PIN_ROOT / n).unlink(missing_ok=True)


def libbpf_times(exe: Path, obj: Path, off: tuple[str, ...], n: int) -> list[float] | None:
    cmd = [str(exe)] + [a for name in off for a in ("-x", name)] + ["-n", str(n), str(obj)]
    r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return None if r["err"] else r["times"]


def bpfkit_times(obj: Path, off: tuple[str, ...], n: int) -> list[float] | None:
    autoload = {name: False for name in off} or None
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            coll = bpfkit.load(obj, autoload=autoload)
        except BpfkitError:
            return None
        coll.close()
        times.append(time.perf_counter() - t0)
    return times


def fresh(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warm", type=int, default=15, help="warm loads per object and loader")
    ap.add_argument("--fresh", type=int, default=3, help="fresh processes per object")
    ap.add_argument("--only", default="", help="only objects whose name contains this")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: loading BPF objects needs it")
    exe = build_loader()
    rows = []
    for src in sorted((CORPUS / "bpf").glob("*.bpf.c")):
        name = src.name.removesuffix(".bpf.c")
        if args.only not in name:
            continue
        obj = build_object(src)
        for off in variants(src):
            unpin(obj)
            if libbpf_times(exe, obj, off, 1) is None or bpfkit_times(obj, off, 1) is None:
                continue  # this variant does not load on this kernel (or libbpf 1.1 lacks it)
            unpin(obj)
            ours = bpfkit_times(obj, off, args.warm)
            unpin(obj)
            ref = libbpf_times(exe, obj, off, args.warm)
            assert ours is not None and ref is not None
            unpin(obj)
            f_ours = fresh([sys.executable, "-c", FRESH_SNIPPET, str(obj), *off], args.fresh)
            unpin(obj)
            f_ref = fresh([str(exe)] + [a for n in off for a in ("-x", n)] + [str(obj)],
                          args.fresh)
            unpin(obj)
            rows.append((name, statistics.median(ours), statistics.median(ref), f_ours, f_ref))
            break
    if not rows:
        sys.exit("no object loaded with both loaders")
    print(f"{'object':24} {'bpfkit ms':>10} {'libbpf ms':>10} {'warm x':>7}   "
          f"{'bpfkit ms':>10} {'libbpf ms':>10} {'fresh x':>7}")
    for name, w, wr, f, fr in rows:
        print(f"{name:24} {w * 1e3:10.2f} {wr * 1e3:10.2f} {w / wr:7.2f}   "
              f"{f * 1e3:10.1f} {fr * 1e3:10.1f} {f / fr:7.2f}")
    warm = [w / wr for _, w, wr, _, _ in rows]
    fr_ = [f / fr for _, _, _, f, fr in rows]
    print(f"\n{len(rows)} objects loaded by both")
    print(f"warm  (in-process) bpfkit/libbpf: median {statistics.median(warm):.2f}x, "
          f"geometric mean {gmean(warm):.2f}x (target <= 1.0x)")
    print(f"fresh (new process) bpfkit/libbpf: median {statistics.median(fr_):.2f}x, "
          f"geometric mean {gmean(fr_):.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
