"""The wheel and sdist: reproducible bytes, licence metadata, and a non-editable install
into a fresh venv that runs the CLI, a tool, the exporter and `run FILE.o` with no clang
on PATH (the committed objects are what make that possible)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.allow_fd_leak


def _need_build() -> None:
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.skip("the 'build' package is missing (pip install -e '.[dev]'; make setup does)")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: scripts/dist.py packs the files git tracks")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    _need_build()
    out = []
    for n in ("a", "b"):
        d = tmp_path_factory.mktemp(f"dist-{n}")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "dist.py"), "--outdir", str(d)],
                       check=True, capture_output=True)
        out.append(d)
    return out[0], out[1]


def test_two_builds_give_the_same_bytes(dists: tuple[Path, Path]) -> None:
    a, b = dists
    names = sorted(p.name for p in a.iterdir())
    assert any(n.endswith(".whl") for n in names) and any(n.endswith(".tar.gz") for n in names)
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), f"{n} differs between two builds"


def test_licence_and_metadata(dists: tuple[Path, Path]) -> None:
    whl = next(dists[0].glob("*.whl"))
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
        # what the runtime needs without a compiler ships built
        assert "bpfkit/export/configs/execs.bpf.o" in names
        assert any(n.startswith("bpfkit/tools/bpf/") and n.endswith(".bpf.o") for n in names)
        assert "bpfkit/include/bpf/bpf_helpers.h" in names
    assert "License-Expression: Apache-2.0" in meta
    assert "Requires-Python: >=3.10" in meta
    assert "Classifier: Operating System :: POSIX :: Linux" in meta
    assert "Project-URL: Source" in meta
    # linters are for developers, not for running the tests
    test_extra = [ln for ln in meta.splitlines() if ln.endswith('extra == "test"')]
    assert test_extra and not any("ruff" in ln or "mypy" in ln for ln in test_extra)
    sdist = next(dists[0].glob("*.tar.gz"))
    with tarfile.open(sdist) as t:
        assert any(m.name.endswith("/LICENSE") for m in t.getmembers())


def _path_without_clang(tmp: Path) -> str:
    """A PATH with everything in /usr/bin and /usr/sbin but clang and LLVM."""
    farm = tmp / "bin"
    farm.mkdir()
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(("clang", "llc", "llvm", "ld.lld", "bpftool", "bpftrace")):
                continue
            if not (farm / name).exists():
                (farm / name).symlink_to(os.path.join(d, name))
    return str(farm)


@pytest.mark.requires_root
def test_wheel_runs_in_a_fresh_venv_without_clang(dists: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    from bpfkit.build import compile_bpf
    whl = next(dists[0].glob("*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--no-deps", str(whl)], check=True, capture_output=True)
    # an object built now, while clang is still reachable: `run FILE.o` must not need it
    obj = compile_bpf(ROOT / "src" / "bpfkit" / "examples" / "demo.bpf.c",
                      tmp_path / "demo.bpf.o")
    env = {"PATH": f"{venv / 'bin'}:{_path_without_clang(tmp_path)}", "HOME": str(tmp_path),
           "LANG": "C.UTF-8"}
    assert shutil.which("clang-19", path=env["PATH"]) is None
    bpfkit = str(venv / "bin" / "bpfkit")

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([bpfkit, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)

    r = run("--help")
    assert r.returncode == 0 and "execsnoop" in r.stdout
    # installed, not the work tree
    r = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import bpfkit, sys; print(bpfkit.__file__)"],
                       env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert str(venv) in r.stdout
    r = run("export", "--once", "execs")
    assert r.returncode == 0, r.stderr
    assert "bpf_execs_total" in r.stdout
    r = run("run", str(obj), "--duration", "1")
    assert r.returncode == 0, r.stderr
    # bpftrace's language, compiled by bpfkit itself (no clang, no LLVM)
    r = run("trace", "-c", "/bin/true", "-e", "tracepoint:syscalls:sys_enter_execve "
            "/pid == cpid/ { @[str(args->filename)] = count(); }")
    assert r.returncode == 0, r.stderr
    assert "@[/bin/true]: 1" in r.stdout.splitlines(), r.stdout
    # a tool: a directory made while it runs is reported
    name = f"bpfkit-dist-{uuid.uuid4().hex[:8]}"
    p = subprocess.Popen([bpfkit, "mkdirsnoop", "--json"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        time.sleep(3)
        os.mkdir(f"/dev/shm/{name}")
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(f"/dev/shm/{name}", ignore_errors=True)
    assert name in out, (out, err)
    r = run("build", str(ROOT / "src" / "bpfkit" / "examples" / "demo.bpf.c"))
    assert r.returncode != 0 and "no clang found" in r.stderr and "apt-get install" in r.stderr
