"""Every parser of untrusted input, fuzzed for a bounded, deterministic number of inputs.

The targets, seeds, mutators and the per-input time/memory bounds are those of ``make fuzz``
(tools/fuzz.py), which runs the same targets for millions of inputs.  Here each target gets
mutations of its real seeds plus raw random bytes; any outcome other than success or a
ParseError naming the problem (another exception, a wrapped Python error, a timeout, memory
beyond the bound) fails the test with the input and its traceback.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import fuzz  # noqa: E402

_SEEDS: dict[str, list[bytes]] = {}


def seeds(name: str) -> list[bytes]:
    if name not in _SEEDS:
        _SEEDS[name] = fuzz.TARGETS[name].seeds() or [b""]
        fuzz.warm_up(fuzz.TARGETS[name], _SEEDS[name])
    return _SEEDS[name]


def check(name: str, data: bytes, measure: bool) -> None:
    out = fuzz.run_one(fuzz.TARGETS[name], data, measure_memory=measure)
    assert out.kind != "finding", (f"{name}: {out.signature} on a {len(data)}-byte input "
                                   f"{data[:64]!r}...\n{out.detail}")


BOUNDED = settings(derandomize=True, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(fuzz.TARGETS))
def test_mutated_seeds(name: str) -> None:
    target = fuzz.TARGETS[name]
    corpus = seeds(name)

    @settings(BOUNDED, max_examples=150)
    @given(st.integers(0, 2**32), st.integers(0, 7))
    def one(seed: int, pick: int) -> None:
        rng = random.Random(seed)
        base = corpus[pick % len(corpus)]
        data = fuzz.mutate(rng, base, corpus, target.text)
        check(name, data, measure=seed % 8 == 0)

    one()


@pytest.mark.parametrize("name", sorted(fuzz.TARGETS))
def test_random_bytes(name: str) -> None:
    @settings(BOUNDED, max_examples=60)
    @given(st.binary(max_size=512))
    def one(data: bytes) -> None:
        check(name, data, measure=False)

    one()


def test_seeds_parse() -> None:
    """The seeds are real inputs: each parses (a seed that errors would fuzz only the
    first check of its parser)."""
    for name in ("elf", "btf", "btf_ext", "spec", "usdt", "ldcache", "yamlite", "kallsyms"):
        # the last yamlite seed exercises YAML syntax, not the exporter's config keys
        for s in seeds(name)[:-1] if name == "yamlite" else seeds(name):
            out = fuzz.run_one(fuzz.TARGETS[name], s)
            assert out.kind == "ok", (name, out.signature)


def test_fuzzer_finds_a_planted_bug_and_resumes(tmp_path: Path) -> None:
    """The long-running fuzzer itself: a target that crashes on some inputs produces a
    finding on disk, counts survive a second run, and a hang is caught by the timer."""
    state = tmp_path / "state"
    args = [sys.executable, str(ROOT / "tools" / "fuzz.py"), "--dir", str(state),
            "--targets", "tracefs", "--time", "4", "--slice", "1", "--print-every", "1"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert "inputs" in first.stdout and first.returncode in (0, 1), first.stderr
    stats1 = fuzz.Store(state).load_stats()
    n1 = stats1["tracefs"]["inputs"]
    assert n1 > 100
    second = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert f"resuming at inputs {n1}," in second.stdout
    assert fuzz.Store(state).load_stats()["tracefs"]["inputs"] > n1

    def buggy(data: bytes) -> None:
        if data[:1] == b"x":
            raise IndexError("planted")
        if data[:1] == b"h":
            while True:
                pass

    t = fuzz.Target("planted", buggy, lambda: [b"x"])
    old = fuzz.TIME_BASE
    fuzz.TIME_BASE = 0.2
    try:
        assert fuzz.run_one(t, b"x").signature.startswith("IndexError@")
        hang = fuzz.run_one(t, b"h" + bytes(10))
        assert hang.kind == "finding" and hang.signature.startswith("timeout")
        assert fuzz.run_one(t, b"ok").kind == "ok"
    finally:
        fuzz.TIME_BASE = old
