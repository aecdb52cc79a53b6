#!/usr/bin/env python3
"""`bpfkit trace` beside bpftrace on the same one-liner: time from command start to
"Attaching N probes..." (printed by bpfkit once attached, by bpftrace just before it
attaches) and peak RSS, as medians and ratios; plus the compile time (parse, check,
code generation; no kernel objects) of a 20-line script.

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

ONE_LINER = "tracepoint:syscalls:sys_enter_getpid { @[comm] = count(); }"

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


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], marker: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert p.stdout is not None
    buf = b""
    deadline = t0 + 60
    while marker.encode() not in buf and time.perf_counter() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    elapsed = time.perf_counter() - t0
    time.sleep(0.2)  # let RSS settle on the steady state, not only start-up
    rss = vm_hwm(p.pid) if p.poll() is None else 0
    p.send_signal(2)
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    if marker.encode() not in buf:
        raise SystemExit(f"{cmd[0]} never printed {marker!r}: {buf[-300:]!r}")
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
    cmd = [sys.executable, "-c", code, "trace", "-e", ONE_LINER]
    measure(cmd, "Attaching", env)
    ours = [measure(cmd, "Attaching", env) for _ in range(runs)]
    t = statistics.median(x[0] for x in ours) * 1e3
    rss = statistics.median(x[1] for x in ours) / 2**20
    print(f"bpfkit trace: attached after {t:6.0f} ms, peak RSS {rss:5.1f} MB "
          f"(median of {runs}; targets <= bpftrace, 30 MB)")
    bt = shutil.which("bpftrace")
    if bt:
        theirs = [measure([bt, "-e", ONE_LINER], "Attaching") for _ in range(runs)]
        bt_t = statistics.median(x[0] for x in theirs) * 1e3
        bt_rss = statistics.median(x[1] for x in theirs) / 2**20
        print(f"bpftrace:     attached after {bt_t:6.0f} ms, peak RSS {bt_rss:5.1f} MB")
        print(f"ratio bpfkit/bpftrace: time {t / bt_t:.2f}x, RSS {rss / bt_rss:.2f}x")
    lines = len([ln for ln in SCRIPT_20.strip().splitlines() if ln.strip()])
    print(f"compile a {lines}-line script (parse, check, codegen): {compile_ms(20):.1f} ms "
          "(median of 20; target 20 ms)")


if __name__ == "__main__":
    main()
