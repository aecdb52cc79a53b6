"""`make test-kernels`: run tests/kernels on the host kernel and inside other kernels.

Each kernel is booted once (under QEMU, see bpfkit.testing.vm) and runs the whole pytest
selection; every run writes a JSON report (tests/kernels/conftest.py) and a JUnit XML file
into one directory shared read-write with the guests.  Then this prints a table of hook
family x kernel -> passed / skipped (with the probe's reason) / FAILED.

    .venv/bin/python tests/kernels/run.py [--kernel KVER]... [--out DIR] [-- PYTEST_ARGS]

Exit status: 0 when nothing failed and every kernel reported; 1 otherwise.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from bpfkit.testing.vm import DEFAULT_KERNELS, VM, VMError, ensure_installed  # noqa: E402

HOST = "host"


@dataclass
class Run:
    kernel: str                 # a Debian kernel version, or HOST
    label: str
    exit_code: int = -1
    seconds: float = 0.0
    boot_s: float | None = None
    report: dict[str, Any] | None = None
    log: Path | None = None


def _pytest_args(out: Path, name: str, extra: list[str]) -> list[str]:
    # hypothesis' plugin costs seconds to import under emulation, and these tests need none
    return ["-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
            "tests/kernels",
            f"--kernel-report={out / f'report-{name}.json'}",
            f"--junitxml={out / f'junit-{name}.xml'}", *extra]


def _prebuild() -> None:
    """Compile the BPF test objects and the Python bytecode on the host: the guests see
    this tree read-only (their writes go to a throw-away overlay), and compiling under
    emulation costs seconds per boot."""
    spec = importlib.util.spec_from_file_location("kernels_conftest",
                                                  ROOT / "tests" / "kernels" / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for src in sorted(mod.KBPF_DIR.glob("*.bpf.c")):
        mod.kernel_obj(src.name.removesuffix(".bpf.c"))
    for d in (ROOT / "src", ROOT / "tests"):
        compileall.compile_dir(str(d), quiet=1)


def _read_report(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


def run_host(out: Path, extra: list[str], env: dict[str, str]) -> Run:
    r = Run(HOST, f"{platform.release()} (host)", log=out / "log-host.txt")
    t0 = time.monotonic()
    with open(r.log, "w") as f:   # type: ignore[arg-type]
        p = subprocess.run([sys.executable, *_pytest_args(out, HOST, extra)], cwd=ROOT,
                           stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **env},
                           check=False)
    r.exit_code, r.seconds = p.returncode, time.monotonic() - t0
    r.report = _read_report(out / f"report-{HOST}.json")
    return r


def run_guest(kernel: str, out: Path, extra: list[str], env: dict[str, str],
              timeout: float) -> Run:
    r = Run(kernel, kernel, log=out / f"log-{kernel}.txt")
    vm = VM(rw_dirs=[out], cwd=ROOT, install=False,
            env={**env, "BPFKIT_EXPECT_KERNEL": kernel})
    t0 = time.monotonic()
    # the venv's python by its path: a pyenv shim would cost seconds under emulation
    cmd = [sys.executable, *_pytest_args(out, kernel, extra)]
    try:
        r.exit_code, output = vm.run(kernel, cmd, timeout=timeout)
    except VMError as e:
        r.exit_code, output = 255, f"bpfkit.testing.vm: {e}\n"
    r.seconds, r.boot_s = time.monotonic() - t0, vm.boot_s
    assert r.log is not None
    r.log.write_text(output)
    r.report = _read_report(out / f"report-{kernel}.json")
    return r


def _cell(results: list[dict[str, Any]], notes: dict[str, int]) -> str:
    outcomes = [x["outcome"] for x in results]
    if not outcomes:
        return "-"
    parts = []
    failed = outcomes.count("failed")
    passed = outcomes.count("passed")
    skipped = [x for x in results if x["outcome"] == "skipped"]
    if failed:
        parts.append(f"FAILED ({failed})" if len(outcomes) > 1 else "FAILED")
    if passed:
        parts.append("passed" if passed == len(outcomes) else f"{passed} passed")
    if skipped:
        refs = []
        for x in skipped:
            n = notes.setdefault(x["reason"], len(notes) + 1)
            if f"[{n}]" not in refs:
                refs.append(f"[{n}]")
        word = "skipped" if len(skipped) == len(outcomes) else f"{len(skipped)} skipped"
        parts.append(f"{word} {''.join(refs)}")
    return ", ".join(parts)


def table(runs: list[Run]) -> str:
    """Hook family x kernel; skip reasons as numbered notes under the table."""
    hooks: list[str] = []
    for r in runs:
        for x in (r.report or {}).get("results", []):
            if x["hook"] not in hooks:
                hooks.append(x["hook"])
    notes: dict[str, int] = {}
    failures: list[str] = []
    rows = [["hook family"] + [r.label for r in runs]]
    for h in hooks:
        row = [h]
        for r in runs:
            if r.report is None:
                row.append(f"no report (exit {r.exit_code})")
                continue
            res = [x for x in r.report["results"] if x["hook"] == h]
            row.append(_cell(res, notes))
            failures += [f"{r.label}: {x['test']}: {x['reason']}" for x in res
                         if x["outcome"] == "failed"]
        rows.append(row)
    if not hooks:
        rows.append(["(no results)"] + [f"exit {r.exit_code}" for r in runs])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines += [""] + [f"[{n}] {reason}" for reason, n in notes.items()]
    if failures:
        lines += ["", "failures:"] + [f"  {f}" for f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--kernel", action="append", dest="kernels", metavar="KVER",
                   help=f"Debian kernel to boot (repeatable; default {' and '.join(DEFAULT_KERNELS)})")
    p.add_argument("--no-host", action="store_true", help="do not run on the host kernel")
    p.add_argument("--out", default=str(ROOT / "build" / "test-kernels"),
                   help="directory for reports and logs (shared read-write with the guests)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per boot")
    p.add_argument("--sequential", action="store_true", help="boot one guest at a time")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- extra pytest arguments")
    a = p.parse_args(argv)
    extra = [x for x in a.pytest_args if x != "--"] if a.pytest_args else []
    kernels = a.kernels or list(DEFAULT_KERNELS)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for f in list(out.glob("report-*.json")) + list(out.glob("junit-*.xml")) + \
            list(out.glob("log-*.txt")):
        f.unlink()
    t0 = time.monotonic()
    try:
        ensure_installed(kernels)
    except VMError as e:
        print(f"test-kernels: {e}", file=sys.stderr)
        return 1
    _prebuild()
    env: dict[str, str] = {}
    runs: list[Run] = []
    if not a.no_host:
        runs.append(run_host(out, extra, env))
        print(f"test-kernels: host {runs[0].label}: exit {runs[0].exit_code}, "
              f"{runs[0].seconds:.1f} s", flush=True)
    with ThreadPoolExecutor(max_workers=1 if a.sequential else len(kernels)) as pool:
        futures = [pool.submit(run_guest, k, out, extra, env, a.timeout) for k in kernels]
        for fut in futures:
            r = fut.result()
            boot = f"{r.boot_s:.1f} s" if r.boot_s is not None else "never"
            print(f"test-kernels: {r.kernel}: exit {r.exit_code}, {r.seconds:.1f} s "
                  f"(booted in {boot})", flush=True)
            runs.append(r)
    print()
    print(table(runs))
    bad = [r for r in runs if r.report is None or r.exit_code not in (0, 5)]
    failed = any(x["outcome"] == "failed" for r in runs for x in (r.report or {}).get("results", []))
    for r in bad:
        assert r.log is not None
        tail = r.log.read_text(errors="replace").splitlines()[-60:]
        print(f"\n== {r.label}: exit {r.exit_code}; end of {r.log}:\n" + "\n".join(tail))
    print(f"\ntest-kernels: {len(runs)} kernels in {time.monotonic() - t0:.1f} s; "
          f"reports and logs in {out}")
    return 1 if bad or failed else 0


if __name__ == "__main__":
    sys.exit(main())
