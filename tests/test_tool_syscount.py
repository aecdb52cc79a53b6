"""syscount as BCC's: per-syscall counts with names by default, -P per process, -L latency,
-x failed only, -e ERRNO, -d, -i; checked against bpftrace counting the same workload's
raw_syscalls:sys_exit at the same time, and against the workload's own counts."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from tool_oracles import BPFKIT, Bpftrace, Tool

pytestmark = pytest.mark.requires_root

N_GETPPID, N_ENOENT, N_EBADF, N_SLEEP, SLEEP_S = 300, 40, 25, 5, 0.02


def workload(comm: str) -> int:
    """A child named ``comm``: getppid x N, failed openat (ENOENT), close(-1) (EBADF),
    nanosleep; returns its pid."""
    code = (
        "import ctypes, os, time\n"
        f"ctypes.CDLL(None).prctl(15, {comm.encode()!r}, 0, 0, 0)\n"
        f"for _ in range({N_GETPPID}): os.getppid()\n"
        f"for _ in range({N_ENOENT}):\n"
        "    try: os.open('/nonexistent/bk_syscount', os.O_RDONLY)\n"
        "    except FileNotFoundError: pass\n"
        f"for _ in range({N_EBADF}):\n"
        "    try: os.close(-1)\n"
        "    except OSError: pass\n"
        f"for _ in range({N_SLEEP}): time.sleep({SLEEP_S})\n")
    p = subprocess.run([sys.executable, "-c", code], check=True)
    return p.returncode


def _bt_counts(comm: str) -> str:
    return (f'tracepoint:raw_syscalls:sys_exit /comm == "{comm}"/ '
            "{ @[args->id] = count(); if (args->ret < 0) { @failed[args->id, -args->ret] = count(); } }")


def test_default_view_is_per_syscall_and_matches_bpftrace() -> None:
    from bpfkit.export.syscalls import syscall_table
    nr = {v: k for k, v in syscall_table().items()}
    comm = f"bkSc{os.getpid() % 100000}"
    with Bpftrace(_bt_counts(comm)) as bt, Tool("syscount", "-n", comm, "-T", "500",
                                                 "-d", "4") as t:
        workload(comm)
    rows = {r["syscall"]: r["count"] for r in t.records()}
    oracle = {int(k): v for k, v in bt.maps["@"].items()}
    assert rows["getppid"] == N_GETPPID == oracle[nr["getppid"]]
    assert rows["openat"] == oracle[nr["openat"]] >= N_ENOENT
    assert rows["close"] == oracle[nr["close"]] >= N_EBADF
    # every syscall bpftrace saw, with the same count
    assert {nr.get(s, s): c for s, c in rows.items()} == \
        {k: v for k, v in oracle.items()}, (rows, oracle)


def test_failed_only_and_errno_filter() -> None:
    comm = f"bkSx{os.getpid() % 100000}"
    with Bpftrace(_bt_counts(comm)) as bt, \
            Tool("syscount", "-n", comm, "-x", "-d", "4") as fx, \
            Tool("syscount", "-n", comm, "-e", "ENOENT", "-d", "4") as fe:
        workload(comm)
    failed = {r["syscall"]: r["count"] for r in fx.records()}
    assert "getppid" not in failed and failed["close"] >= N_EBADF
    assert failed["openat"] >= N_ENOENT
    from bpfkit.export.syscalls import syscall_table
    names = syscall_table()
    oracle_failed: dict[str, int] = {}
    oracle_enoent: dict[str, int] = {}
    for k, v in bt.maps["@failed"].items():
        sc, err = (int(x) for x in k.split(","))
        oracle_failed[names[sc]] = oracle_failed.get(names[sc], 0) + v
        if err == errno.ENOENT:
            oracle_enoent[names[sc]] = oracle_enoent.get(names[sc], 0) + v
    assert failed == oracle_failed
    enoent = {r["syscall"]: r["count"] for r in fe.records()}
    assert enoent == oracle_enoent and "close" not in enoent


def test_latency_and_per_process() -> None:
    comm = f"bkSl{os.getpid() % 100000}"
    with Tool("syscount", "-n", comm, "-L", "-m", "-d", "4") as lat, \
            Tool("syscount", "-n", comm, "-P", "-d", "4") as per:
        workload(comm)
    rows = {r["syscall"]: r for r in lat.records()}
    sleep = rows.get("clock_nanosleep") or rows["nanosleep"]
    assert sleep["count"] == N_SLEEP
    # the workload slept N_SLEEP x SLEEP_S: the total is at least that, not wildly more
    assert N_SLEEP * SLEEP_S * 1e3 <= sleep["time_ms"] < N_SLEEP * SLEEP_S * 1e3 * 20
    assert rows["getppid"]["count"] == N_GETPPID and rows["getppid"]["time_ms"] < 100
    procs = per.records()
    assert len(procs) == 1 and procs[0]["comm"] == comm, procs
    assert procs[0]["count"] >= N_GETPPID + N_ENOENT + N_EBADF + N_SLEEP


def test_text_output_and_interval() -> None:
    comm = f"bkSt{os.getpid() % 100000}"
    with Tool("syscount", "-n", comm, "-L", "-i", "1", "-d", "3.5", json_mode=False) as t:
        workload(comm)
    out = t.stdout
    heads = [ln for ln in out.splitlines() if ln.startswith("SYSCALL")]
    assert len(heads) >= 3, out           # one table a second
    assert heads[0].split() == ["SYSCALL", "COUNT", "TIME", "(us)"]
    assert any(ln.split()[:2] == ["getppid", str(N_GETPPID)] for ln in out.splitlines())
    assert sum(ln.startswith("[") and ln.endswith("]") for ln in out.splitlines()) >= 3


@pytest.mark.parametrize("argv", [["-i", "0"], ["-T", "0"], ["-e", "ENOPE"], ["-e", "0"],
                                  ["-d", "x"]])
def test_numbers_validated(argv: list[str]) -> None:
    p = subprocess.run([BPFKIT, "syscount", *argv], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "error:" in p.stderr, p.stderr


def test_refusals() -> None:
    for argv, msg in ((["-x", "-e", "2"], "exclude"), (["-m"], "goes with -L")):
        p = subprocess.run([BPFKIT, "syscount", *argv, "-d", "0.1"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 1 and msg in p.stderr, p.stderr
