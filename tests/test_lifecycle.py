"""Lifecycle: SIGTERM behaves as Ctrl-C (detach, summary, exit 0) for `bpfkit run` and the
tools, and bpfkit never replaces a SIGTERM handler the program installed itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
EXAMPLE = ROOT / "src" / "bpfkit" / "examples" / "demo.bpf.c"


def _wait_for(p: subprocess.Popen[str], needle: str, timeout: float = 60.0) -> str:
    """Read stderr lines until ``needle`` shows (the command is attached)."""
    assert p.stderr is not None
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never printed: {''.join(seen)}")


@pytest.mark.requires_root
def test_timeout_run_prints_maps_and_exits_0() -> None:
    # `timeout` sends SIGTERM; --preserve-status gives bpfkit's own exit status
    p = subprocess.run(["timeout", "--preserve-status", "6", BPFKIT, "run", str(EXAMPLE)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "globals:" in p.stdout and "execs =" in p.stdout, p.stdout[-2000:]
    assert "Traceback" not in p.stderr


@pytest.mark.requires_root
@pytest.mark.parametrize("tool,args,summary", [
    ("syscount", ["5"], "COUNT"),           # an interval tool prints its last interval
    ("opensnoop", ["-n", "bpfkit-no-such-file"], None),
])
def test_sigterm_to_a_tool_is_ctrl_c(tool: str, args: list[str], summary: str | None) -> None:
    p = subprocess.Popen([BPFKIT, tool, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(p, "attached")
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    if summary:
        assert summary in out, out


_EMBED = textwrap.dedent("""
    import signal, sys
    import bpfkit
    from bpfkit import cleanup
    from bpfkit.manager import Manager, Probe

    def mine(signum, frame):
        pass

    signal.signal(signal.SIGTERM, mine)

    class Thing:
        def close(self):
            pass

    t = Thing()
    cleanup.track(t)          # would install the exit-cleanup handler
    assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
    with Manager(sys.argv[1], [Probe("on_exec")]) as m:
        assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is mine
    cleanup.untrack(t)
    print("kept")
""")


@pytest.mark.requires_root
def test_cleanup_and_manager_keep_the_programs_own_sigterm_handler(tmp_path: Path) -> None:
    from bpfkit.build import compile_bpf
    obj = tmp_path / "demo.bpf.o"
    compile_bpf(EXAMPLE, obj)
    p = subprocess.run([sys.executable, "-c", _EMBED, str(obj)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert p.returncode == 0 and "kept" in p.stdout, p.stderr
