"""``bpfkit run`` of a C file: ring buffer, counters and a log2 histogram all come out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires_root

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
EXAMPLE = Path(__file__).resolve().parent.parent / "src" / "bpfkit" / "examples" / "demo.bpf.c"


def test_run_c_file_prints_events_counters_and_histogram(tmp_path: Path) -> None:
    marker = tmp_path / "bpfkit-run-marker"
    marker.write_bytes(b"x" * 3000)
    work = f"cat {marker} > /dev/null; cat {marker} > /dev/null"
    p = subprocess.run([BPFKIT, "run", str(EXAMPLE), "--", "sh", "-c", work],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    # ring buffer records decoded through BTF (struct event)
    assert "filename: '/usr/bin/cat'" in out or "filename: '/bin/cat'" in out
    # hash of counters keyed by comm, sorted
    assert "@opens_by_comm" in out and "'cat':" in out
    # log2 histogram: the two 3000-byte reads land in 2048 -> 4095
    assert "@read_size_hist" in out and "2048 -> 4095" in out and "distribution" in out
    assert "attached on_exec to tracepoint/syscalls/sys_enter_execve" in p.stderr


def test_run_json_and_consts(tmp_path: Path) -> None:
    p = subprocess.run([BPFKIT, "run", str(EXAMPLE), "--json", "--", "/bin/true"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert lines[0]["type"] == "attached" and len(lines[0]["probes"]) == 3
    events = [x for x in lines if x["type"] == "event"]
    assert any(e["data"]["filename"] == "/bin/true" for e in events)
    maps = lines[-1]["maps"]
    assert maps["globals"]["execs"] >= 1
    assert maps["read_size_hist"]["type"] == "log2_histogram"
    bad = subprocess.run([BPFKIT, "run", str(EXAMPLE), "--const", "nosuch=1", "--duration",
                          "0.1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "nosuch" in bad.stderr and "Traceback" not in bad.stderr


def _setpriv(caps: str) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [setpriv, "--bounding-set", f"-all,{caps}", "--"]


def test_run_with_only_the_capabilities_tracing_needs() -> None:
    # uid 0 keeps file access through DAC caps; BPF needs only CAP_BPF + CAP_PERFMON
    base = "+dac_override,+dac_read_search"
    p = subprocess.run(_setpriv(f"+bpf,+perfmon,{base}") + [BPFKIT, "run", str(EXAMPLE),
                                                             "--duration", "0.3"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "attached on_exec" in p.stderr
    q = subprocess.run(_setpriv(f"+perfmon,{base}") + [BPFKIT, "run", str(EXAMPLE),
                                                        "--duration", "0.3"],
                       capture_output=True, text=True, timeout=60)
    assert q.returncode == 3  # missing privilege
    assert "lacks CAP_BPF" in q.stderr and "Traceback" not in q.stderr
