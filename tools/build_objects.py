#!/usr/bin/env python3
"""Build the BPF objects bpfkit ships (src/bpfkit/tools/bpf/*.bpf.c and the exporter's
built-in configs, src/bpfkit/export/configs/*.bpf.c -> .bpf.o), so that the tools, the
exporter and `run FILE.o` need no compiler at run time.

Reproducible: relative paths from that directory, -fdebug-compilation-dir=., no vmlinux.h
(tools.h declares the kernel fields they use), so the committed objects can be checked
against their sources (`--check`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "src" / "bpfkit"
BPF_DIR = PKG / "tools" / "bpf"
BPF_DIRS = (BPF_DIR, PKG / "export" / "configs")


def clang() -> str:
    for c in ("clang-19", "clang"):
        p = shutil.which(c)
        if p:
            return p
    sys.exit("build_objects: clang-19 not found (make setup installs it)")


def build(src: Path, out: Path) -> None:
    cmd = [clang(), "-target", "bpf", "-g", "-O2", "-D__TARGET_ARCH_x86",
           "-I/usr/include/x86_64-linux-gnu", "-I.", "-fdebug-compilation-dir=.",
           "-Wall", "-Wno-unused-function", "-c", src.name, "-o", str(out)]
    subprocess.run(cmd, cwd=src.parent, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true",
                    help="rebuild into a temp dir and fail if a committed object differs")
    ap.add_argument("names", nargs="*", help="only these tools")
    a = ap.parse_args()
    srcs = sorted(s for d in BPF_DIRS for s in d.glob("*.bpf.c"))
    if a.names:
        srcs = [s for s in srcs if s.name.removesuffix(".bpf.c") in a.names]
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in srcs:
            obj = src.parent / (src.name.removesuffix(".c") + ".o")
            if a.check:
                fresh = Path(tmp) / obj.name
                build(src, fresh)
                if not obj.exists() or obj.read_bytes() != fresh.read_bytes():
                    bad.append(obj.name)
            else:
                build(src, obj)
                print(f"built {obj.relative_to(PKG.parent.parent)}")
    if bad:
        print("objects out of date with their sources: " + ", ".join(bad) +
              " (run python tools/build_objects.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
