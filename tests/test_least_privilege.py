"""A non-root user with only CAP_BPF + CAP_PERFMON: errors say what is missing.

Run through setpriv as uid 65534 with those two capabilities ambient (as a systemd unit with
AmbientCapabilities= would).  Tracing tools meet a tracefs that is mounted but not readable
by that user; networking tools meet the kernel's demand for CAP_NET_ADMIN / CAP_NET_RAW.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_root

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
NOBODY = 65534


def as_nobody(*args: str, caps: str = "+bpf,+perfmon") -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
           f"--inh-caps={caps}", f"--ambient-caps={caps}", "--", BPFKIT, *args]
    env = dict(os.environ, HOME="/tmp")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def _tracefs_closed_to_others() -> str:
    from bpfkit.attach.perf import tracefs_path
    path = tracefs_path()
    mode = os.stat(path).st_mode
    if mode & (stat.S_IROTH | stat.S_IXOTH) == (stat.S_IROTH | stat.S_IXOTH):
        pytest.skip(f"tracefs at {path} is readable by every user here: nothing to refuse")
    return path


@pytest.mark.parametrize("args", [["execsnoop", "--duration", "0.5"], ["trace-pipe"]])
def test_tracefs_mounted_but_unreadable_is_said_so(args: list[str]) -> None:
    path = _tracefs_closed_to_others()
    p = as_nobody(*args)
    assert p.returncode != 0
    assert "tracefs is mounted but this process cannot read it" in p.stderr, p.stderr
    assert path in p.stderr
    assert "not mounted" not in p.stderr and "Traceback" not in p.stderr


def test_tc_program_names_cap_net_admin_not_cap_bpf() -> None:
    p = as_nobody("pktcount", "-i", "lo", "--duration", "0.5", "1")
    assert p.returncode == 3, p.stderr
    assert "lacks CAP_NET_ADMIN" in p.stderr, p.stderr
    assert "lacks CAP_BPF" not in p.stderr and "Traceback" not in p.stderr
    # with CAP_NET_ADMIN as well, the same user gets past the load
    q = as_nobody("pktcount", "-i", "lo", "--duration", "0.5", "1",
                  caps="+bpf,+perfmon,+net_admin")
    assert "lacks CAP_NET_ADMIN" not in q.stderr, q.stderr


def test_packet_socket_names_cap_net_raw() -> None:
    p = as_nobody("sockfilter", "--duration", "0.5")
    assert p.returncode == 3, p.stderr
    assert "need CAP_NET_RAW" in p.stderr and "Traceback" not in p.stderr
