"""Tools shared checks: committed objects match their sources, --help lists the tools,
and execsnoop reports an exec this test causes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


def test_committed_tool_objects_match_their_sources() -> None:
    if not (shutil.which("clang-19") or shutil.which("clang")):
        pytest.skip("clang-19 not installed")
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "build_objects.py"), "--check"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr


def test_help_lists_every_tool() -> None:
    from bpfkit.tools import TOOL_MODULES
    out = subprocess.run([BPFKIT, "--help"], capture_output=True, text=True, check=True).stdout
    for name in TOOL_MODULES:
        assert name in out
        assert (ROOT / "src" / "bpfkit" / "tools" / "bpf" / f"{name}.bpf.o").exists()


@pytest.mark.requires_root
@pytest.mark.allow_fd_leak
def test_execsnoop_reports_our_exec(tmp_path: Path) -> None:
    marker = f"bpfkit-execsnoop-{time.time_ns()}"
    p = subprocess.Popen([BPFKIT, "execsnoop", "--json", "--duration", "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # load + attach
    child = subprocess.run(["/bin/echo", marker], capture_output=True, check=True)
    assert child.returncode == 0
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    events = [json.loads(x) for x in out.splitlines() if x.strip()]
    mine = [e for e in events if marker in e["argv"]]
    assert mine, f"no exec of our marker in {len(events)} events: {err}"
    e = mine[0]
    assert e["argv"][0] == "/bin/echo" and e["retval"] == 0 and e["comm"] == "echo"
