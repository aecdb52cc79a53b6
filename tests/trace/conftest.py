"""Fixtures of the trace oracle tests: the workload, compiled with gcc, and runners
for bpftrace 0.17 and `bpfkit trace` (the latter with no clang on PATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Unique per test session: other sessions (other worktrees, CI) run the same workload at
# the same time, and a comm filter must not count their syscalls.
COMM = f"bkwl_{os.getpid():x}"[:15]


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("trace") / COMM
    subprocess.run([gcc, "-O1", "-g", "-fno-inline", "-o", str(out), str(HERE / "workload.c")],
                   check=True)
    return out


@pytest.fixture(scope="session")
def noclang_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with a shell and coreutils-style basics but no clang/llc/gcc."""
    d = tmp_path_factory.mktemp("bin")
    for tool in ("sh", "true", "sleep", "cat", "ls", "bash"):
        p = shutil.which(tool)
        if p:
            os.symlink(p, d / tool)
    path = str(d)
    assert shutil.which("clang", path=path) is None
    assert shutil.which("clang-19", path=path) is None
    return path


def run_bpfkit(args: list[str], path: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path)
    code = "import sys; from bpfkit.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, "trace", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_bpftrace(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    bt = shutil.which("bpftrace")
    if bt is None:
        pytest.skip("bpftrace (the oracle) is not installed")
    return subprocess.run([bt, *args], capture_output=True, text=True, timeout=timeout)


def normalize(out: str) -> list[str]:
    """Lines to compare: the attach banner dropped, sorted (event order may differ)."""
    return sorted(ln for ln in out.splitlines() if not ln.startswith("Attaching ")
                  and "attached_probes" not in ln)


def has_usdt(binary: object) -> bool:
    """Whether the workload was built with <sys/sdt.h> (systemtap-sdt-dev) probes."""
    from bpfkit.attach.usdt import parse_usdt_notes
    from bpfkit.elf import ElfFile
    with ElfFile.open(str(binary)) as elf:
        return bool(parse_usdt_notes(elf, parse_args=False))
