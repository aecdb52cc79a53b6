#!/usr/bin/env python3
"""Start-up of ``bpfkit run`` on a small tracepoint object: time to "attached" and peak RSS,
printed beside bpftrace doing the same one-liner (when bpftrace is installed).

Targets (issue 6): attached within 150 ms of the command starting, under 40 MB RSS.
Run as root: .venv/bin/python bench/startup.py [runs]
"""

from __future__ import annotations

import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _summary import record

SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
__u64 calls = 0;
SEC("tp/syscalls/sys_enter_getpid")
int count_getpid(void *ctx) { __sync_fetch_and_add(&calls, 1); return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], marker: str, stream: str = "stdout") -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pipe = p.stdout if stream == "stdout" else p.stderr
    assert pipe is not None
    buf = ""
    deadline = t0 + 30
    while marker not in buf and time.perf_counter() < deadline:
        r, _, _ = select.select([pipe], [], [], 0.5)
        if r:
            chunk = os.read(pipe.fileno(), 4096).decode(errors="replace")
            if not chunk:
                break
            buf += chunk
    elapsed = time.perf_counter() - t0
    rss = vm_hwm(p.pid) if p.poll() is None else 0
    p.send_signal(2)  # SIGINT: what bpftrace (and bpfkit) stop cleanly on
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    if marker not in buf:
        raise SystemExit(f"{cmd[0]} never printed {marker!r}: {buf[-500:]}")
    return elapsed, rss


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    bpfkit = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "getpid.bpf.c"
        src.write_text(SRC)
        obj = Path(tmp) / "getpid.bpf.o"
        subprocess.run([bpfkit, "build", str(src), "-o", str(obj)], check=True,
                       capture_output=True)
        ours = [measure([bpfkit, "run", str(obj), "--json", "--duration", "5"], '"attached"')
                for _ in range(runs)]
    t = statistics.median(x[0] for x in ours) * 1e3
    rss = statistics.median(x[1] for x in ours) / 2**20
    print(f"bpfkit run (tracepoint object): attached after {t:6.0f} ms, peak RSS {rss:5.1f} MB "
          f"(median of {runs}; targets 150 ms, 40 MB)")
    bt = shutil.which("bpftrace")
    if bt:
        theirs = [measure([bt, "-e", "tracepoint:syscalls:sys_enter_getpid { @c = count(); }"],
                          "Attaching", stream="stdout") for _ in range(runs)]
        bt_t = statistics.median(x[0] for x in theirs) * 1e3
        bt_rss = statistics.median(x[1] for x in theirs) / 2**20
        print(f"bpftrace one-liner:             attached after {bt_t:6.0f} ms, peak RSS "
              f"{bt_rss:5.1f} MB")
        print(f"ratio bpfkit/bpftrace: time {t / bt_t:.2f}x, RSS {rss / max(bt_rss, 1e-9):.2f}x")
        record("start to attached: bpfkit run X.bpf.o", t, "ms", peer="bpftrace -e",
               peer_value=bt_t, ratio=t / bt_t, target="<= 1.0x", ok=t / bt_t <= 1.0)
        r = rss / max(bt_rss, 1e-9)
        record("peak RSS until attached", rss, "MB", peer="bpftrace -e", peer_value=bt_rss,
               ratio=r, target="<= 0.3x", ok=r <= 0.3)
    else:
        print("bpftrace not installed: no reference run (apt-get install bpftrace)")


if __name__ == "__main__":
    main()
