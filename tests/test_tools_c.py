"""The tools added for BCC parity (exitsnoop, killsnoop, statsnoop, ...), run as a user
runs them (``bpfkit <tool> ... --json`` in a subprocess) while the test causes known
events, compared with an independent oracle: the workload's own results (wait statuses,
syscall return values), kernel counters, or bpftrace 0.17 run at the same time.  Other
processes run on this machine, so every check filters on what the test made."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_tools_a import run_tool

pytestmark = pytest.mark.requires_root


class Bpftrace:
    """bpftrace 0.17 running a one-liner beside the tool: the independent oracle.  Waits
    for "Attaching N probes..." before the workload starts; ``stop()`` ends it (SIGINT,
    so END blocks and maps print) and returns its stdout (stderr has a harmless
    RLIMIT_MEMLOCK warning here)."""

    def __init__(self, script: str) -> None:
        exe = shutil.which("bpftrace")
        if exe is None:
            pytest.skip("bpftrace is not installed (the oracle of this test)")
        env = dict(os.environ, BPFTRACE_STRLEN="200")  # 64 truncates pytest's tmp paths
        self.p = subprocess.Popen([exe, "-e", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        if not self.ready.wait(20):
            self.p.kill()
            pytest.fail("bpftrace did not attach: " + (self.p.stderr.read() if self.p.stderr
                                                        else ""))

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.startswith("Attaching"):
                self.ready.set()
                continue
            self.lines.append(line.rstrip("\n"))
        self.ready.set()

    def stop(self) -> list[str]:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(20)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.t.join(5)
            for f in (self.p.stdout, self.p.stderr):
                if f is not None:
                    f.close()
        return [ln for ln in self.lines if ln.strip()]


def with_oracle(script: str, argv: list[str], trigger: Callable[[], None]) -> tuple[Any, list[str]]:
    """Run the tool and bpftrace at the same time around ``trigger``."""
    bt = Bpftrace(script)
    try:
        r = run_tool(argv, trigger)
    finally:
        lines = bt.stop()
    return r, lines


def _uniq(prefix: str) -> str:
    """A command name (at most 15 characters) no other process on the machine has."""
    return f"{prefix}{os.getpid() % 100000}"[:15]


def _renamed(name: str, body: str) -> list[str]:
    """argv of a python child that renames itself (PR_SET_NAME) then runs ``body``."""
    return [sys.executable, "-c",
            f"import ctypes, os, sys, time\nctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)\n"
            + body]


# --------------------------------------------------------------------------- exitsnoop


def test_exitsnoop_codes_and_signals_match_wait_status() -> None:
    comm = _uniq("bkexit")
    statuses: dict[int, int] = {}

    def trigger() -> None:
        kids = [subprocess.Popen(_renamed(comm, f"sys.exit({c})")) for c in (0, 3, 7)]
        killed = subprocess.Popen(_renamed(comm, "time.sleep(30)"))
        time.sleep(0.5)
        killed.send_signal(signal.SIGKILL)
        for k in [*kids, killed]:
            _, st = os.waitpid(k.pid, 0)
            k.returncode = 0  # reaped here: keep Popen from waiting again
            statuses[k.pid] = st
        time.sleep(0.3)

    r = run_tool(["exitsnoop", "--json", "--duration", "4", "-n", comm], trigger)
    recs = {x["pid"]: x for x in r.records() if x["comm"] == comm}
    assert set(recs) == set(statuses), (recs, statuses, r.stderr)
    for pid, st in statuses.items():
        x = recs[pid]
        assert x["raw_exit_code"] == st
        if os.WIFSIGNALED(st):
            assert x["signal"] == os.WTERMSIG(st) == signal.SIGKILL and x["exit_code"] is None
        else:
            assert x["exit_code"] == os.WEXITSTATUS(st) and x["signal"] is None
        assert x["ppid"] == os.getpid() and x["age_s"] >= 0


def test_exitsnoop_failed_only_text() -> None:
    comm = _uniq("bkexitx")

    def trigger() -> None:
        for c in (0, 5):
            subprocess.run(_renamed(comm, f"sys.exit({c})"))
        time.sleep(0.3)

    r = run_tool(["exitsnoop", "-x", "--duration", "3", "-n", comm], trigger)
    lines = [ln for ln in r.out.splitlines() if ln.startswith(comm)]
    assert r.out.splitlines()[0].split() == ["PCOMM", "PID", "PPID", "TID", "AGE(s)",
                                             "EXIT_CODE"]
    assert len(lines) == 1 and lines[0].endswith("code 5"), r.out




# --------------------------------------------------------------------------- killsnoop


def test_killsnoop_matches_bpftrace_and_return_values() -> None:
    comm = _uniq("bkkill")
    script = (f'tracepoint:syscalls:sys_enter_kill,tracepoint:syscalls:sys_enter_tgkill '
              f'/comm == "{comm}"/ {{ printf("%d %d\\n", tid, args->sig); }}')
    body = ("import signal, threading\n"
            "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
            "res = []\n"
            "for sig in (0, signal.SIGUSR1, 0):\n"
            "    os.kill(os.getpid(), sig); res.append(0)\n"
            "try:\n    os.kill(999999, 0)\nexcept ProcessLookupError:\n    res.append(-3)\n"
            "signal.pthread_kill(threading.get_ident(), signal.SIGUSR1); res.append(0)\n"
            "print(os.getpid(), res)\n")
    out: list[str] = []

    def trigger() -> None:
        out.append(subprocess.run(_renamed(comm, body), capture_output=True, text=True,
                                  check=True).stdout)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["killsnoop", "--json", "--duration", "3", "-n", comm],
                            trigger)
    pid_s, res = out[0].split(" ", 1)
    recs = [x for x in r.records() if x["comm"] == comm]
    assert [x["result"] for x in recs] == eval(res), recs
    assert [x["signal"] for x in recs] == [0, signal.SIGUSR1, 0, 0, signal.SIGUSR1]
    assert [x["call"] for x in recs] == ["kill"] * 4 + ["tgkill"]
    assert recs[3]["target"] == 999999 and recs[3]["error"] == "ESRCH"
    assert all(x["pid"] == int(pid_s) for x in recs)
    assert [int(ln.split()[1]) for ln in oracle] == [x["signal"] for x in recs], oracle


# --------------------------------------------------------------------------- statsnoop


def test_statsnoop_paths_and_errors_match_bpftrace(tmp_path: Any) -> None:
    tag = f"bkstat_{os.getpid()}"
    exists = tmp_path / f"{tag}_yes"
    exists.write_text("x")
    missing = tmp_path / f"{tag}_no"
    script = ('tracepoint:syscalls:sys_enter_newfstatat,tracepoint:syscalls:sys_enter_statx '
              f'/pid == {os.getpid()}/ {{ printf("%s\\n", str(args->filename)); }} '
              f'tracepoint:syscalls:sys_enter_statfs /pid == {os.getpid()}/ '
              '{ printf("%s\\n", str(args->pathname)); }')

    def trigger() -> None:
        os.stat(exists)
        with pytest.raises(FileNotFoundError):
            os.stat(missing)
        os.lstat(exists)
        os.statvfs(tmp_path)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["statsnoop", "--json", "--duration", "3", "-p",
                                     str(os.getpid())], trigger)
    recs = [x for x in r.records() if tag in x["path"] or x["path"] == str(tmp_path)]
    assert [(x["path"], x["errno"]) for x in recs] == [
        (str(exists), 0), (str(missing), 2), (str(exists), 0), (str(tmp_path), 0)], r.out
    assert recs[1]["error"] == "ENOENT" and recs[-1]["call"] == "statfs"
    seen = [ln for ln in oracle if tag in ln or ln == str(tmp_path)]
    assert seen == [x["path"] for x in recs], oracle


# --------------------------------------------------------------------------- syncsnoop


def test_syncsnoop_calls_match_bpftrace(tmp_path: Any) -> None:
    import mmap
    me = os.getpid()
    script = (f'tracepoint:syscalls:sys_enter_sync*,tracepoint:syscalls:sys_enter_fsync,'
              f'tracepoint:syscalls:sys_enter_fdatasync,tracepoint:syscalls:sys_enter_msync '
              f'/pid == {me}/ {{ printf("%s\\n", probe); }}')

    def trigger() -> None:
        with open(tmp_path / "f", "wb+") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
            os.fdatasync(f.fileno())
            os.sync()
            m = mmap.mmap(f.fileno(), 4096)
            m[0:1] = b"y"
            m.flush()  # msync
            m.close()
            fd = f.fileno()
        time.sleep(0.3)
        calls.append(fd)

    calls: list[int] = []
    r, oracle = with_oracle(script, ["syncsnoop", "--json", "--duration", "3", "-p", str(me)],
                            trigger)
    recs = r.records()
    assert [x["call"] for x in recs] == ["fsync", "fdatasync", "sync", "msync"], r.out
    assert recs[0]["fd"] == calls[0] and recs[2]["fd"] is None
    assert [ln.rsplit("sys_enter_", 1)[1] for ln in oracle] == [x["call"] for x in recs]


# --------------------------------------------------------------------------- capable


def test_capable_allow_and_deny_match_bpftrace() -> None:
    comm = _uniq("bkcap")
    f = f"/dev/shm/{comm}"  # reachable by uid 65534 (pytest's tmp_path is not)
    with open(f, "w"):
        pass
    body = (f"os.chown({str(f)!r}, 65534, -1)\n"   # root: CAP_CHOWN allowed
            "os.setresuid(65534, 65534, 65534)\n"
            f"try:\n    os.chown({str(f)!r}, 0, -1)\nexcept PermissionError:\n"
            "    print('denied')\n")
    script = (f'tracepoint:capability:cap_capable /comm == "{comm}"/ '
              '{ printf("%d %d\\n", args->cap, args->ret); }')
    out: list[str] = []

    def trigger() -> None:
        out.append(subprocess.run(_renamed(comm, body), capture_output=True, text=True,
                                  check=True).stdout)
        time.sleep(0.3)

    r, oracle = with_oracle(script, ["capable", "--json", "--duration", "3", "-n", comm],
                            trigger)
    os.unlink(f)
    assert out == ["denied\n"]
    recs = [x for x in r.records() if x["comm"] == comm]
    chown = [x for x in recs if x["name"] == "CAP_CHOWN"]
    assert [x["verdict"] for x in chown] == ["allow", "deny"], recs
    assert chown[0]["uid"] == 0 and chown[1]["uid"] == 65534
    assert [(x["cap"], x["ret"]) for x in recs] == [
        tuple(int(v) for v in ln.split()) for ln in oracle], oracle
