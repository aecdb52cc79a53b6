"""Shared fixtures: root check, fd-leak check, BPF C build helper."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPF_DIR = Path(__file__).resolve().parent / "bpf"
BUILD_DIR = Path(__file__).resolve().parent / ".build"


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: BPF programs and maps need CAP_BPF/CAP_SYS_ADMIN")
    for item in items:
        if "requires_root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_fd_leak(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Fail a test that leaves file descriptors open (maps, programs, links, perf events)."""
    if "allow_fd_leak" in request.keywords:
        yield
        return
    import gc
    before = _fds()
    yield
    gc.collect()
    after = _fds()
    leaked = after - before
    leaked_desc = []
    for fd in sorted(leaked):
        try:
            leaked_desc.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    if leaked_desc:
        pytest.fail("file descriptors leaked by the test: " + ", ".join(leaked_desc))


def clang() -> str:
    for c in ("clang-19", "clang"):
        p = shutil.which(c)
        if p:
            return p
    pytest.skip("clang-19 is not installed (make test installs it)")
    raise AssertionError


def build_bpf(src: str | Path, out_dir: Path | None = None, extra: list[str] | None = None) -> Path:
    """Compile a BPF C source to an object (cached by mtime)."""
    src = Path(src)
    if not src.is_absolute():
        src = BPF_DIR / src
    out_dir = out_dir or BUILD_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / (src.name.removesuffix(".c") + ".o")
    if obj.exists() and obj.stat().st_mtime >= src.stat().st_mtime:
        return obj
    cmd = [clang(), "-target", "bpf", "-g", "-O2", "-D__TARGET_ARCH_x86",
           "-I/usr/include/x86_64-linux-gnu", "-I", str(BPF_DIR), "-c", str(src), "-o",
           str(obj)] + (extra or [])
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return obj


@pytest.fixture
def bpf_obj():  # type: ignore[no-untyped-def]
    return build_bpf
