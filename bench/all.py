#!/usr/bin/env python3
"""Run every benchmark and print one table: each headline figure, the peer measured in the
same run (bpftrace, libbpf in C built at run time, bpftool), the ratio and the target.

    .venv/bin/python bench/all.py [--only NAME ...]      (make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# script, arguments: the order the table shows them in
SCRIPTS = [("startup", []), ("load", []), ("btf", []), ("ringbuf", []), ("perfbuf", []),
           ("maps", []), ("trace", [])]


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        s = f"{v / 1e6:.2f} M"
    elif abs(v) >= 100:
        s = f"{v:,.0f} "
    else:
        s = f"{v:.2f} "
    return (s + unit).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args()
    rows: list[dict[str, object]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "rows.jsonl"
        env = dict(os.environ, BPFKIT_BENCH_SUMMARY=str(summary))
        for name, args in SCRIPTS:
            if a.only and name not in a.only:
                continue
            script = HERE / f"{name}.py"
            if not script.exists():
                continue
            t0 = time.perf_counter()
            print(f"--- bench/{name}.py", flush=True)
            r = subprocess.run([sys.executable, str(script), *args], env=env)
            print(f"--- bench/{name}.py: {time.perf_counter() - t0:.0f} s, exit {r.returncode}",
                  flush=True)
            if r.returncode:
                failed.append(name)
        if summary.exists():
            rows = [json.loads(line) for line in summary.read_text().splitlines() if line]
    print()
    head = f"{'figure':<46}{'bpfkit':>16}  {'peer':<28}{'ratio':>8}  {'target':<16}{'':>4}"
    print(head)
    print("-" * len(head))
    for r in rows:
        peer = str(r["peer"] or "")
        if r["peer_value"] is not None:
            peer = f"{peer} {fmt(r['peer_value'], str(r['unit']))}"  # type: ignore[arg-type]
        ok = {True: "ok", False: "MISS", None: ""}[r["ok"]]  # type: ignore[index]
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        print(f"{r['figure']!s:<46}{fmt(r['ours'], str(r['unit'])):>16}  "  # type: ignore[arg-type]
              f"{peer:<28}{ratio:>8}  {r['target']!s:<16}{ok:>4}")
    if failed:
        print(f"\nscripts that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
