"""The tools' shared argument layer (bpfkit/tools/base.py): BCC's flags, filters declared
or refused, validated numbers, the JSON "attached" object and a time on every record, and
the cgroup filter execsnoop and profile apply in their BPF code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BPFKIT = str(Path(sys.executable).parent / "bpfkit")
if not os.path.exists(BPFKIT):
    BPFKIT = shutil.which("bpfkit") or BPFKIT
root = pytest.mark.requires_root


def bk(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, *argv], capture_output=True, text=True, timeout=timeout)


def test_declared_filter_constants_exist_in_each_object() -> None:
    """A filter a tool declares as a constant is a const volatile of its object."""
    from bpfkit.spec import CollectionSpec
    from bpfkit.tools import all_tools
    from bpfkit.tools.base import OPTIONS, object_path
    for tool in all_tools():
        for key, how in tool.filters.items():
            assert key in tool.options, f"{tool.name}: filter {key} without its option"
            assert OPTIONS[key].filter
            if ":" in how or how == "tool":
                continue
            spec = CollectionSpec.from_file(object_path(tool.obj or tool.name))
            assert how in spec.variables, f"{tool.name}: no constant {how} in its object"


@pytest.mark.parametrize("argv, word", [
    (["netrx", "-p", "1"], "process id"),
    (["pktcount", "-c", "/"], "cgroup"),
    (["tcpstates", "-n", "bash"], "process name"),
    (["netrx", "-u", "0"], "user id"),
])
def test_filter_a_tool_cannot_apply_is_refused(argv: list[str], word: str) -> None:
    p = bk(*argv, "-d", "0.1")
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot filter by {word}" in lines[0], p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("argv", [["opensnoop", "-p", "0"], ["opensnoop", "-p", "x"],
                                  ["execsnoop", "-d", "-1"], ["writesize", "0"],
                                  ["writesize", "1", "-2"], ["profile", "-F", "0"],
                                  ["opensnoop", "-u", "-1"]])
def test_bad_numbers_are_usage_errors(argv: list[str]) -> None:
    p = bk(*argv)
    assert p.returncode == 2 and "error:" in p.stderr, p.stderr


def test_help_says_where_we_differ_from_bcc() -> None:
    out = bk("execsnoop", "--help").stdout
    for flag in ("-x", "-T", "-t", "-U", "-u UID", "-n NAME", "-c PATH", "-d SECONDS"):
        assert flag in out
    assert "include failed" in out and "Differs from BCC's execsnoop" in out
    prof = bk("profile", "--help").stdout
    assert "[duration]" in prof and "-f, --folded" in prof and "-L TID" in prof


def _exec_workload(tag: str, fail: int, ok: int) -> None:
    """``ok`` successful and ``fail`` failed execs, each with ``tag`` in argv."""
    for _ in range(ok):
        subprocess.run(["/bin/true", tag], check=True)
    for _ in range(fail):
        with pytest.raises(FileNotFoundError):
            subprocess.run([f"/nonexistent/{tag}", tag])


def _run_json(argv: list[str], work: Iterator[None] | None = None,
              duration: float = 3.0) -> tuple[list[dict], list[dict], str]:
    p = subprocess.Popen([BPFKIT, *argv, "--json", "-d", str(duration)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    first = p.stderr.readline()        # the "attached" object comes when tracing starts
    attached = json.loads(first)
    if work is not None:
        for _ in work:
            pass
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, first + err
    return [attached], [json.loads(x) for x in out.splitlines() if x.strip()], err


@root
@pytest.mark.parametrize("include_failed", [False, True])
def test_execsnoop_x_includes_failed_and_json_has_attached_and_time(
        include_failed: bool) -> None:
    tag = f"bkargs{os.getpid()}x{int(include_failed)}"

    def work() -> Iterator[None]:
        _exec_workload(tag, fail=2, ok=3)
        time.sleep(0.3)
        yield None

    t0 = time.time()
    argv = ["execsnoop"] + (["-x"] if include_failed else [])
    attached, recs, err = _run_json(argv, work())
    a = attached[0]
    assert a["attached"] is True and a["tool"] == "execsnoop" and a["probes"]
    assert all(p["attached"] for p in a["probes"])
    assert abs(a["time"] - t0) < 10
    assert recs and all(t0 - 1 < r["time"] < time.time() + 1 for r in recs)
    mine = [r for r in recs if tag in r["argv"]]
    ok = [r for r in mine if r["retval"] == 0]
    failed = [r for r in mine if r["retval"] != 0]
    assert len(ok) == 3, mine          # the workload's own count is the oracle
    assert len(failed) == (2 if include_failed else 0), mine
    assert all(r["retval"] == -2 for r in failed)   # ENOENT


@pytest.fixture
def empty_cgroup() -> Iterator[str]:
    from bpfkit.attach.cgroup import cgroup2_mount
    try:
        base = cgroup2_mount()
    except Exception as e:
        pytest.skip(f"no cgroup2 mount: {e}")
    cg = os.path.join(base, f"bkargs_empty_{os.getpid()}")
    os.mkdir(cg)
    try:
        yield cg
    finally:
        os.rmdir(cg)


@root
def test_execsnoop_cgroup_filter(empty_cgroup: str) -> None:
    """Empty cgroup: nothing; a process moved into it: only its exec."""
    tag = f"bkargs_cg{os.getpid()}"
    procs = os.path.join(empty_cgroup, "cgroup.procs")
    inner = f"open({procs!r}, 'w').write(str(__import__('os').getpid())); " \
            f"__import__('os').execv('/bin/true', ['/bin/true', {tag + 'in'!r}])"

    def work() -> Iterator[None]:
        _exec_workload(tag, fail=0, ok=3)
        subprocess.run([sys.executable, "-c", inner], check=True)
        time.sleep(0.3)
        yield None

    _, recs, err = _run_json(["execsnoop", "-c", empty_cgroup], work())
    assert not any(tag in r["argv"] for r in recs), recs
    assert [r["argv"] for r in recs if tag + "in" in r["argv"]] == [["/bin/true", tag + "in"]]
    # and nothing else ran in that cgroup
    assert len(recs) == 1, recs


@root
def test_profile_cgroup_filter_on_empty_cgroup(empty_cgroup: str) -> None:
    """A busy CPU outside the cgroup, an empty cgroup: profile reports no sample."""
    burn = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        p = bk("profile", "-c", empty_cgroup, "-F", "99", "--json", "1.5")
        q = bk("profile", "-p", str(burn.pid), "-F", "99", "--json", "1.5")
    finally:
        burn.kill()
        burn.wait()
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["samples"] == 0
    assert json.loads(q.stdout.splitlines()[-1])["samples"] > 5   # the oracle: it was busy (a loaded machine samples it less)
