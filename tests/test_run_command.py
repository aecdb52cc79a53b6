"""``bpfkit run OBJ -- COMMAND``: the command starts held before exec, its pid goes into the
object's targ_pid, and it is released once attached: events follow the command as
bpftrace's -c/cpid do (not the noise of other processes), and run stops when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tool_oracles import BPFKIT

pytestmark = pytest.mark.requires_root
SRC = Path(__file__).resolve().parent / "bpf" / "follow_cmd.bpf.c"


def test_events_follow_the_command_and_run_stops_when_it_exits() -> None:
    stop = threading.Event()

    def noise() -> None:          # another process calling getppid all along
        while not stop.is_set():
            os.getppid()
            time.sleep(0.0005)

    t = threading.Thread(target=noise, daemon=True)
    t.start()
    code = "import os, time\nfor _ in range(123): os.getppid()\ntime.sleep(0.5)\nraise SystemExit(7)"
    t0 = time.monotonic()
    try:
        p = subprocess.run([BPFKIT, "run", str(SRC), "--json", "--", sys.executable, "-c", code],
                           capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        t.join()
    elapsed = time.monotonic() - t0
    assert p.returncode == 7, p.stderr           # the command's exit status
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    maps = next(x for x in lines if x.get("type") == "maps")["maps"]
    rows = maps["calls"]
    # only the command's pid, with exactly the calls it made (the workload's own count)
    assert len(rows) == 1 and rows[0]["value"] == 123, rows
    assert rows[0]["key"] != os.getpid()
    assert elapsed < 60        # no --duration: it stopped because the command exited


def test_a_command_that_cannot_exec_is_an_error() -> None:
    p = subprocess.run([BPFKIT, "run", str(SRC), "--", "/nonexistent/bk_cmd"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "cannot run '/nonexistent/bk_cmd'" in p.stderr, p.stderr


def test_pid_and_command_exclude_each_other() -> None:
    p = subprocess.run([BPFKIT, "run", str(SRC), "-p", "1", "--", "/bin/true"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "exclude each other" in p.stderr, p.stderr
