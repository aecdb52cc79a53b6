"""`bpfkit trace` on kernel-function hooks: kprobe/kretprobe and kfunc/kretfunc
(fentry/fexit), compiled by bpfkit's own front end.

This machine's kernel has no kprobes and refuses fentry, so these skip here with the
feature probe's words and run inside the Debian kernels of `make test-kernels`.
Triggers: N mkdirs on /dev/shm (tmpfs) by a `mkdir` child, filtered on its comm.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from bpfkit import AttachType, ProgramType

from . import test_hooks
from .test_hooks import need

shm_dir = test_hooks.shm_dir  # the fixture (a tmpfs directory), shared with test_hooks

features = pytest.importorskip("bpfkit.attach.features")
runtime = pytest.importorskip("bpfkit.trace.runtime")

pytestmark = pytest.mark.requires_root
N = 5


def trace(program: str, shm_dir: Path) -> list[str]:
    mkdir = shutil.which("mkdir") or "/bin/mkdir"
    dirs = " ".join(str(shm_dir / f"d{i}") for i in range(N))
    out = io.StringIO()
    runtime.Tracer(program, command=f"{mkdir} {dirs}", out=out).run()
    return out.getvalue().splitlines()


@pytest.mark.hook("kprobe")
def test_trace_kprobe_and_kretprobe(shm_dir: Path) -> None:
    need(features.has_kprobes())
    lines = trace('kprobe:vfs_mkdir /comm == "mkdir"/ { @calls = count(); @mode[arg3] = '
                  'count(); } kretprobe:vfs_mkdir /comm == "mkdir"/ { @ret[retval] = count(); }',
                  shm_dir)
    assert f"@calls: {N}" in lines
    assert f"@ret[0]: {N}" in lines
    assert f"@mode[{0o777}]: {N}" in lines  # mkdir(1) asks for 0777 (before the umask)


@pytest.mark.hook("fentry")
def test_trace_kfunc_args_from_btf(shm_dir: Path) -> None:
    need(features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY))
    lines = trace('kfunc:vfs_mkdir /comm == "mkdir"/ { @[str(args->dentry->d_name.name)] = '
                  "count(); @mode = sum(args->mode); }", shm_dir)
    for i in range(N):
        assert f"@[d{i}]: 1" in lines
    assert f"@mode: {N * 0o777}" in lines


@pytest.mark.hook("fexit")
def test_trace_kretfunc_retval(shm_dir: Path) -> None:
    need(features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FEXIT))
    lines = trace('kretfunc:vfs_mkdir /comm == "mkdir"/ { @[retval] = count(); }', shm_dir)
    assert f"@[0]: {N}" in lines


def test_trace_kernel_hooks_refused_here_say_why(shm_dir: Path) -> None:
    """Where the kernel lacks the hook, the error names it (never a silent no-op)."""
    if features.has_kprobes().supported:
        pytest.skip("this kernel has kprobes")
    from bpfkit.errors import BpfkitError
    with pytest.raises(BpfkitError, match="kprobe"):
        trace("kprobe:vfs_mkdir { @ = count(); }", shm_dir)


ORACLE = [
    ("kprobe", 'kprobe:vfs_mkdir /comm == "mkdir"/ { @[comm, arg3] = count(); }'),
    ("kretprobe", 'kretprobe:vfs_mkdir /comm == "mkdir"/ { @[retval] = count(); }'),
    ("kprobe", 'kprobe:vfs_mkd* /comm == "mkdir"/ { @[func, probe] = count(); }'),
    ("fentry", 'kfunc:vfs_mkdir /comm == "mkdir"/ { @[args->mode] = count(); '
               "@n = sum(args->mode & 7); }"),
    ("fexit", 'kretfunc:vfs_mkdir /comm == "mkdir"/ { @[retval] = count(); }'),
]


@pytest.mark.parametrize("hook,program", ORACLE, ids=[f"{h}{i}" for i, (h, _) in enumerate(ORACLE)])
def test_trace_matches_bpftrace(hook: str, program: str, shm_dir: Path,
                                request: pytest.FixtureRequest) -> None:
    """The same one-liner through bpftrace 0.17 and `bpfkit trace`, outputs sorted."""
    request.node.add_marker(pytest.mark.hook(hook))
    if hook.startswith("k"):
        need(features.has_kprobes())
    else:
        need(features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY))
    bt = shutil.which("bpftrace")
    if bt is None:
        pytest.skip("bpftrace (the oracle) is not installed")
    import subprocess
    mkdir = shutil.which("mkdir") or "/bin/mkdir"
    dirs = " ".join(str(shm_dir / f"bt{i}") for i in range(N))
    want = subprocess.run([bt, "-c", f"{mkdir} {dirs}", "-e", program], capture_output=True,
                          text=True, timeout=300)
    assert want.returncode == 0, want.stderr
    got = trace(program, shm_dir)

    def norm(lines: list[str]) -> list[str]:
        return sorted(ln for ln in lines if not ln.startswith("Attaching"))
    assert norm(got) == norm(want.stdout.splitlines()), (want.stdout, got)
