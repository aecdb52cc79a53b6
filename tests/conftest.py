"""Shared helpers: the BPF C build helper.  Markers and the leak check come from the
bpfkit pytest plugin (bpfkit.testing.plugin)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPF_DIR = Path(__file__).resolve().parent / "bpf"
BUILD_DIR = Path(__file__).resolve().parent / ".build"


def pytest_configure(config: pytest.Config) -> None:
    # The requires_root / requires_kernel / requires_feature markers and the leak check
    # (ini bpf_leak_check = true: fds, links and pins) come from bpfkit's own pytest
    # plugin, registered through the pytest11 entry point of the installed package.
    if not config.pluginmanager.has_plugin("bpfkit"):
        raise pytest.UsageError("the bpfkit pytest plugin is not registered: reinstall "
                                "bpfkit (make setup, or pip install -e .) so its pytest11 "
                                "entry point exists")


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
    clang()  # skips the test when clang is missing
    from bpfkit.build import compile_bpf
    compile_bpf(src, obj, include_dirs=[BPF_DIR], extra_flags=extra or (), vmlinux=False)
    return obj


@pytest.fixture
def bpf_obj():  # type: ignore[no-untyped-def]
    return build_bpf
