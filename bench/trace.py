#!/usr/bin/env python3
"""`bpfkit trace` beside bpftrace on the same one-liner: time from command start to its
probe firing (a getpid() of this process, see ONE_LINER) and peak RSS, as medians and
ratios; plus the compile time (parse, check, code generation; no kernel objects) of a
20-line script.

Targets (issue 19): start-to-attached <= bpftrace's, RSS <= 30 MB, 20-line compile <= 20 ms.
Run as root: .venv/bin/python bench/trace.py [runs]
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

from _summary import record

# Fires once this process calls getpid() after the probe is live: the moment "hit" comes
# back is when the tracer was really attached (bpftrace prints "Attaching N probes..."
# before it loads and attaches, bpfkit after, so neither banner is a fair finish line).
ONE_LINER = 'tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("hit\\n"); exit(); }'

SCRIPT_20 = r"""
BEGIN { printf("tracing opens, reads and writes\n"); }
tracepoint:syscalls:sys_enter_openat /comm != "bpfkit"/ {
    @start[tid] = nsecs;
    @files[str(args->filename)] = count();
}
tracepoint:syscalls:sys_exit_openat /@start[tid]/ {
    $lat = nsecs - @start[tid];
    @lat = hist($lat / 1000);
    @errors[args->ret < 0 ? - args->ret : 0] = count();
    delete(@start[tid]);
}
tracepoint:syscalls:sys_enter_read { @reads[comm] = sum(args->count); }
tracepoint:syscalls:sys_exit_read /args->ret > 0/ { @rsize = lhist(args->ret, 0, 4096, 512); }
tracepoint:syscalls:sys_enter_write /pid == $1/ {
    if (args->count > 1024) { @big[comm, pid] = count(); } else { @small = count(); }
    printf("%s wrote %d bytes\n", comm, args->count);
}
interval:s:1 { print(@reads); clear(@reads); }
END { printf("done\n"); clear(@start); }
"""


def until_hit(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds from spawning ``cmd`` to its first "hit" while we call getpid(); peak RSS."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert p.stdout is not None
    buf, rss = b"", 0
    while b"hit" not in buf and time.perf_counter() - t0 < 60:
        os.getpid()  # a getpid(2) each round (CPython does not cache it)
        r, _, _ = select.select([p.stdout], [], [], 0.0005)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
        if p.poll() is None:
            with open(f"/proc/{p.pid}/status") as f:
                rss = next((int(ln.split()[1]) * 1024 for ln in f
                            if ln.startswith("VmHWM:")), rss)
    elapsed = time.perf_counter() - t0
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    if b"hit" not in buf:
        raise SystemExit(f"{cmd[0]} never fired: {buf[-300:]!r}")
    return elapsed, rss


def compile_ms(runs: int) -> float:
    from bpfkit.trace.codegen import generate
    from bpfkit.trace.runtime import SystemEnv, compile_program
    env = SystemEnv()
    compile_program(SCRIPT_20, env, ["1"])  # warm the tracepoint format cache once
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        checked = compile_program(SCRIPT_20, env, ["1"])
        generate(checked, 0, ["1"])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    code = "import sys; from bpfkit.cli import main; sys.exit(main())"
    # An installed bpfkit has its bytecode compiled: give the child a bytecode cache even
    # where PYTHONDONTWRITEBYTECODE is set, and warm it with one run not counted.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "bpfkit-bench-pyc")
    me = str(os.getpid())
    cmd = [sys.executable, "-c", code, "trace", "-e", ONE_LINER, me]
    until_hit(cmd, env)
    ours = [until_hit(cmd, env) for _ in range(runs)]
    t = statistics.median(x[0] for x in ours) * 1e3
    rss = statistics.median(x[1] for x in ours) / 2**20
    print(f"bpfkit trace: attached after {t:6.0f} ms, peak RSS {rss:5.1f} MB "
          f"(median of {runs}; targets <= bpftrace, 30 MB)")
    bt = shutil.which("bpftrace")
    bt_t = bt_rss = None
    if bt:
        theirs = [until_hit([bt, "-e", ONE_LINER, me]) for _ in range(runs)]
        bt_t = statistics.median(x[0] for x in theirs) * 1e3
        bt_rss = statistics.median(x[1] for x in theirs) / 2**20
        print(f"bpftrace:     attached after {bt_t:6.0f} ms, peak RSS {bt_rss:5.1f} MB")
        print(f"ratio bpfkit/bpftrace: time {t / bt_t:.2f}x, RSS {rss / bt_rss:.2f}x")
    record("bpfkit trace one-liner: start to attached", t, "ms", peer="bpftrace -e",
           peer_value=bt_t, ratio=t / bt_t if bt_t else None, target="<= bpftrace",
           ok=t <= bt_t if bt_t else None)
    record("bpfkit trace one-liner: peak RSS", rss, "MB", peer="bpftrace -e",
           peer_value=bt_rss, ratio=rss / bt_rss if bt_rss else None, target="<= 30 MB",
           ok=rss <= 30)
    lines = len([ln for ln in SCRIPT_20.strip().splitlines() if ln.strip()])
    ms = compile_ms(20)
    print(f"compile a {lines}-line script (parse, check, codegen): {ms:.1f} ms "
          "(median of 20; target 20 ms)")
    record(f"bpfkit trace: compile a {lines}-line script", ms, "ms", target="<= 20 ms",
           ok=ms <= 20)


if __name__ == "__main__":
    main()
