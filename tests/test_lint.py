"""The tree stays ruff- and mypy-clean (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool,args", [("ruff", ["check", "src", "tests", "bench", "tools"]),
                                       ("mypy", [])])
def test_clean(tool: str, args: list[str]) -> None:
    pytest.importorskip(tool)
    p = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]


def test_core_imports_only_the_standard_library() -> None:
    code = ("import sys, bpfkit, bpfkit.loader, bpfkit.manager, bpfkit.readers, bpfkit.cli; "
            "import bpfkit.attach.auto, bpfkit.btf.codec, bpfkit.run; "
            "std = set(sys.stdlib_module_names); "
            "bad = sorted({m.split('.')[0] for m in sys.modules} - std - {'bpfkit'}); "
            "print(' '.join(bad))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    extra = [m for m in p.stdout.split() if not m.startswith("_")]
    assert extra == [], f"core imports non-stdlib modules: {extra}"
