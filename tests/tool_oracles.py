"""Helpers for the ready tools' tests: run a tool as a user does and wait until it has
attached (its ``--json`` "attached" object on stderr), and run a bpftrace one-liner at the
same time as an independent oracle (``-f json``: its maps and printf lines as data).

    with Bpftrace('tracepoint:raw_syscalls:sys_exit /comm == "x"/ { @[args->id] = count(); }') as bt, \\
            Tool("syscount", "-n", "x", "-d", "3") as t:
        workload()
    assert t.records() ... bt.maps["@"] ...

Both start before the workload and stop after it, so they see the same events.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

BPFKIT = str(Path(sys.executable).parent / "bpfkit")
if not os.path.exists(BPFKIT):
    BPFKIT = shutil.which("bpfkit") or BPFKIT


class _Reader:
    """Collects a pipe's lines in a thread; ``wait_for`` blocks until one matches."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.closed = False
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pred: Any, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = end - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(left)

    def text(self) -> str:
        self.t.join(timeout=30)
        return "".join(self.lines)


class Tool:
    """``bpfkit TOOL ARGS... --json`` in the background, ready once it said "attached".
    Leaving the block waits for it to end (give ``-d``), or stops it with SIGINT when
    ``stop=True``."""

    def __init__(self, *argv: str, json_mode: bool = True, stop: bool = False,
                 timeout: float = 30.0) -> None:
        self.argv = [BPFKIT, *argv, *(["--json"] if json_mode else [])]
        self.stop_it = stop
        self.timeout = timeout
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.out = _Reader(self.p.stdout)
        self.err = _Reader(self.p.stderr)
        line = self.err.wait_for(lambda s: s.startswith(('{"attached"', "# attached")), timeout)
        if line is None:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"{' '.join(argv)} did not attach: {self.err.text()}"
                                 f"{self.out.text()}")
        self.attached: dict[str, Any] = json.loads(line) if line.startswith("{") else {}

    def __enter__(self) -> Tool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stop_it and self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        self.stdout = self.out.text()
        self.stderr = self.err.text()
        self.returncode = self.p.returncode
        for s in (self.p.stdout, self.p.stderr):
            if s is not None:
                s.close()

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines of stdout (after the block)."""
        assert self.returncode == 0, self.stderr
        return [json.loads(x) for x in self.stdout.splitlines() if x.startswith("{")]


def have_bpftrace() -> str:
    bt = shutil.which("bpftrace")
    if not bt:
        pytest.skip("bpftrace is not installed (the oracle of this test)")
    return bt


class Bpftrace:
    """A bpftrace program run as an oracle: started (and attached) on entry, stopped with
    SIGINT on exit; ``maps`` holds the maps it printed ({"@name": {key: value}}) and
    ``printed`` its printf lines."""

    def __init__(self, program: str, timeout: float = 30.0) -> None:
        self.p = subprocess.Popen([have_bpftrace(), "-f", "json", "-e", program],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = _Reader(self.p.stdout)
        self.err = _Reader(self.p.stderr)
        if self.out.wait_for(lambda s: '"attached_probes"' in s, timeout) is None:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"bpftrace did not attach: {self.err.text()}")
        self.maps: dict[str, Any] = {}
        self.printed: list[str] = []

    def __enter__(self) -> Bpftrace:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for line in self.out.text().splitlines():
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if d.get("type") == "map":
                self.maps.update(d["data"])
            elif d.get("type") == "printf":
                self.printed.append(d["data"])
        for s in (self.p.stdout, self.p.stderr):
            if s is not None:
                s.close()
