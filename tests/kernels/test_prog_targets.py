"""fentry/fexit on a function of another BPF program, and freplace of one, through the
loader (``bpfkit.load(..., attach_targets={prog: target})``).

Refused by the kernel bpfkit is developed on (fentry/freplace give EPERM at load), so
these skip there with the feature probe's reason and run in `make test-kernels` guests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import bpfkit
from bpfkit import AttachType, ProgramType

features = pytest.importorskip("bpfkit.attach.features",
                               reason="bpfkit.attach not available yet")

pytestmark = pytest.mark.requires_root

N = 7
PKT = bytes(64)  # target_entry returns bpfkit_target_fn(skb->len) = 65


def need(feature: Any) -> None:
    if not feature.supported:
        pytest.skip(f"{feature.name}: {feature.reason}")


@pytest.fixture
def target(kobj: Any) -> Iterator[Any]:
    with bpfkit.load(kobj("target")) as coll:
        yield coll.programs["target_entry"]


@pytest.mark.hook("fentry/fexit on BPF")
def test_fentry_fexit_on_bpf_function(kobj: Any, target: Any) -> None:
    need(features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY))
    need(features.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FEXIT))
    with bpfkit.load(kobj("prog_tracers"), autoload=["on_entry", "on_exit"],
                     attach_targets={"on_entry": target, "on_exit": target}) as coll:
        links = [coll.programs["on_entry"].attach(), coll.programs["on_exit"].attach()]
        try:
            rets = [target.test_run(PKT).retval for _ in range(N)]
        finally:
            for lk in links:
                lk.close()
        assert rets == [65] * N
        v = coll.variables
        assert (v["fentry_hits"].value, v["fexit_hits"].value) == (N, N)
        assert (v["last_arg"].value, v["last_ret"].value) == (64, 65)
        target.test_run(PKT)  # detached: no more counts
        assert (v["fentry_hits"].value, v["fexit_hits"].value) == (N, N)


@pytest.mark.hook("freplace")
def test_freplace_changes_return_value(kobj: Any, target: Any) -> None:
    need(features.has_program_type(ProgramType.EXT))
    with bpfkit.load(kobj("prog_tracers"), autoload=["bpfkit_replacement"],
                     attach_targets={"bpfkit_replacement": target}) as coll:
        assert target.test_run(PKT).retval == 65
        with coll.programs["bpfkit_replacement"].attach():
            assert [target.test_run(PKT).retval for _ in range(N)] == [1064] * N
        assert target.test_run(PKT).retval == 65
