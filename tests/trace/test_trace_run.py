"""`bpfkit trace` features with no bpftrace 0.17 oracle: checked against what the
workload itself did (rawtracepoint is unsupported by 0.17), plus JSON output,
errors before load, and probe listing."""

from __future__ import annotations

import json

import pytest

from .conftest import COMM, run_bpfkit

pytestmark = pytest.mark.requires_root
F = f'/comm == "{COMM}"/'


def test_rawtracepoint_counts_the_workloads_syscalls(workload: object,
                                                     noclang_path: str) -> None:
    # getppid is syscall 110 on x86_64; the workload makes exactly one per round.
    r = run_bpfkit(["-c", f"{workload} 6", "-e",
                    f'rawtracepoint:sys_enter /comm == "{COMM}" && arg1 == 110/ '
                    "{ @ = count(); }"], noclang_path)
    assert r.returncode == 0, r.stderr
    assert "@: 6" in r.stdout.splitlines()


def test_json_output_shapes(workload: object, noclang_path: str) -> None:
    r = run_bpfkit(["-f", "json", "-c", f"{workload} 4", "-e",
                    f"tracepoint:syscalls:sys_enter_getppid {F} "
                    '{ @c[comm] = count(); @h = hist(2); @s = stats(3); printf("x\\n"); }'],
                   noclang_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
    by_type = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row["data"])
    assert by_type["attached_probes"] == [{"probes": 1}]
    assert by_type["printf"] == ["x\n"] * 4
    assert {"@c": {COMM: 4}} in by_type["map"]
    assert {"@h": [{"min": 2, "max": 3, "count": 4}]} in by_type["hist"]
    assert {"@s": {"count": 4, "average": 3, "total": 12}} in by_type["stats"]


def test_errors_point_at_the_program(noclang_path: str) -> None:
    r = run_bpfkit(["-e", "tracepoint:syscalls:sys_enter_openat { @ = args->filenam; }"],
                   noclang_path)
    assert r.returncode == 1
    assert "did you mean filename?" in r.stderr
    assert "^~~~~~~" in r.stderr


def test_list_probes(noclang_path: str) -> None:
    r = run_bpfkit(["-l", "tracepoint:syscalls:sys_enter_getppid"], noclang_path)
    assert r.returncode == 0
    assert r.stdout.split() == ["tracepoint:syscalls:sys_enter_getppid"]


def test_interval_and_elapsed(noclang_path: str) -> None:
    r = run_bpfkit(["-e", "interval:ms:100 { @n = count(); if (@n >= 3) { exit(); } } "
                    'END { printf("%d\\n", elapsed >= 300000000); }'], noclang_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "1" in lines and "@n: 3" in lines


def test_profile_samples_a_busy_process(workload: object, noclang_path: str) -> None:
    # 99 Hz of cpu-clock: one sample per ~10 ms of CPU the workload used (it prints it).
    r = run_bpfkit(["-c", f"{workload} 1 spin 1000", "-e",
                    "profile:hz:99 /pid == cpid/ { @n = count(); @[comm] = count(); }"],
                   noclang_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    n = next(int(ln.split()[-1]) for ln in lines if ln.startswith("@n:"))
    cpu_ms = next(int(ln.split()[-1]) for ln in lines if ln.startswith("cpu_ms"))
    assert cpu_ms * 0.099 * 0.5 <= n <= cpu_ms * 0.099 * 1.5 + 2, r.stdout
    assert f"@[{COMM}]:" in r.stdout


def test_verifier_failure_points_at_the_statement() -> None:
    from bpfkit.trace.errors import Span, TraceError, caret
    from bpfkit.trace.runtime import _span_of
    spans = [None, Span(8, 20), Span(8, 20), Span(22, 30)]
    log = "0: (bf) r9 = r1\n1: (b7) r1 = 0\n3: (79) r0 = *(u64 *)(r1 +0)\nR1 invalid mem access"
    assert _span_of(log, spans) == Span(22, 30)
    err = TraceError("the verifier rejected it", Span(22, 30), "BEGIN { @a = 1; @b = 22; }")
    assert caret(err.source, err.span).splitlines()[-1] == " " * 22 + "^~~~"


def test_btf_member_errors_suggest_the_kernels_names() -> None:
    from bpfkit.trace import TraceTypeError
    from bpfkit.trace.runtime import SystemEnv, compile_program
    env = SystemEnv()
    if env.btf() is None:
        pytest.skip("no kernel BTF (/sys/kernel/btf/vmlinux)")
    with pytest.raises(TraceTypeError) as ei:
        compile_program("BEGIN { @ = curtask->real_parnt->pid; }", env)
    assert "struct task_struct has no member 'real_parnt' (did you mean real_parent" \
        in str(ei.value)
    assert "^~~~~~~~~~" in str(ei.value)
    c = compile_program("BEGIN { @[curtask->real_parent->pid, curtask->comm] = count(); }", env)
    assert str(c.maps["@"].key) == "(int64, string[16])"  # ints are stored as 64 bits
