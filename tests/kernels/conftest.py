"""Kernel-dependent tests: run on the host by `make test`, and inside other kernels by
`make test-kernels` (tests/kernels/run.py), which reads the JSON report written here.

Every test names its hook family with ``@pytest.mark.hook("kprobe")``; the report maps each
test to (hook, outcome, reason) so the runner can print a hook x kernel table.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

KBPF_DIR = Path(__file__).resolve().parent / "bpf"
# Built on the host before any guest boots: guests see the host's tree read-only and find
# the objects up to date, so they never run clang under emulation.
KBUILD_DIR = Path(__file__).resolve().parent.parent / ".build" / "kernels"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kernel-report", metavar="PATH", default=None,
                     help="write a JSON list of {test, hook, outcome, reason} to PATH")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hook(name): the hook family a kernel test covers")
    config._bpfkit_kernel_results = []  # type: ignore[attr-defined]


def _hook_of(item: pytest.Item) -> str:
    m = item.get_closest_marker("hook")
    return str(m.args[0]) if m and m.args else "other"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    rep.bpfkit_hook = _hook_of(item)


def _reason(rep: pytest.TestReport) -> str:
    lr = rep.longrepr
    if rep.skipped and isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    crash = getattr(lr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip().splitlines()[0][:300]
    text = str(lr or "").strip().splitlines()
    return text[-1][:300] if text else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    results: list[dict[str, Any]] | None = getattr(
        pytest_runtest_logreport, "_results", None)
    if results is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed) or (
            report.when == "teardown" and report.failed):
        outcome = report.outcome
        if report.when != "call" and report.failed:
            outcome = "failed"       # a fixture error counts as a failure of the test
        results.append({"test": report.nodeid, "hook": getattr(report, "bpfkit_hook", "other"),
                        "outcome": outcome, "reason": "" if report.passed else _reason(report),
                        "phase": report.when})


def pytest_sessionstart(session: pytest.Session) -> None:
    pytest_runtest_logreport._results = []  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--kernel-report")
    results = getattr(pytest_runtest_logreport, "_results", [])
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"kernel": platform.release(), "exitstatus": int(exitstatus),
                   "results": results}, f, indent=1)
    os.replace(tmp, path)


def kernel_obj(name: str) -> Path:
    """Build (if stale) tests/kernels/bpf/NAME.bpf.c and return the object's path.

    The same flags as tests/conftest.py's build_bpf (which this conftest cannot import:
    pytest gives both files the module name ``conftest``).
    """
    src = KBPF_DIR / f"{name}.bpf.c"
    obj = KBUILD_DIR / f"{name}.bpf.o"
    if obj.exists() and obj.stat().st_mtime >= src.stat().st_mtime:
        return obj
    cc = shutil.which("clang-19") or shutil.which("clang")
    if cc is None:
        pytest.skip("clang-19 is not installed (make test installs it)")
    KBUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = obj.with_suffix(f".tmp{os.getpid()}")
    subprocess.run([cc, "-target", "bpf", "-g", "-O2", "-D__TARGET_ARCH_x86",
                    "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(tmp)],
                   check=True, capture_output=True, text=True)
    tmp.replace(obj)
    return obj


@pytest.fixture(scope="session", autouse=True)
def _build_kernel_objects() -> None:
    """Build every test object up front, so that the host run leaves them for the guests."""
    for src in sorted(KBPF_DIR.glob("*.bpf.c")):
        kernel_obj(src.name.removesuffix(".bpf.c"))


@pytest.fixture
def kobj():  # type: ignore[no-untyped-def]
    return kernel_obj
