"""Programs whose attach target is another BPF program (fentry/fexit/freplace on a
function of a loaded program): attribute building, and the load on this kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpfkit
from bpfkit._consts import AttachType, ProgramType
from bpfkit.btf import types as bt
from bpfkit.errors import KernelError, LoadError, NotFound
from bpfkit.loader import prog_target_attrs
from bpfkit.spec import CollectionSpec

KBPF = Path(__file__).resolve().parent / "kernels" / "bpf"

pytestmark = pytest.mark.requires_root


@pytest.fixture
def target(bpf_obj) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    with bpfkit.load(bpf_obj(KBPF / "target.bpf.c")) as coll:
        yield coll


@pytest.fixture
def tracers(bpf_obj) -> CollectionSpec:  # type: ignore[no-untyped-def]
    return CollectionSpec.from_file(bpf_obj(KBPF / "prog_tracers.bpf.c"))


@pytest.mark.parametrize("name", ["on_entry", "on_exit", "bpfkit_replacement"])
def test_attrs_resolve_function_in_target_btf(target: Any, tracers: CollectionSpec,
                                              name: str) -> None:
    tprog = target.programs["target_entry"]
    p = tracers.programs[name]
    p.attach_prog = tprog
    attrs = prog_target_attrs(p)
    # the id is the target's own BTF id of the FUNC (the loaded BTF keeps the object's ids)
    want = target.spec.btf.ids_by_name("bpfkit_target_fn", bt.Func)
    assert attrs == {"attach_prog_fd": tprog.fd, "attach_btf_id": want[0]}
    p.attach_prog = tprog.fd  # an fd works too
    assert prog_target_attrs(p) == attrs
    # the copy made by load shares the live target instead of deep-copying it
    assert tracers.copy().programs[name].attach_prog == tprog.fd
    p.attach_prog = tprog
    assert tracers.copy().programs[name].attach_prog is tprog


def test_attr_errors(target: Any, tracers: CollectionSpec) -> None:
    tprog = target.programs["target_entry"]
    p = tracers.programs["on_entry"].copy()
    p.attach_prog = tprog
    p.attach_target = "no_such_fn"
    with pytest.raises(NotFound, match="no function 'no_such_fn'.*bpfkit_target_fn"):
        prog_target_attrs(p)
    p.attach_prog = "bogus"
    p.attach_target = "bpfkit_target_fn"
    with pytest.raises(LoadError, match="must be a loaded Program or a program fd"):
        prog_target_attrs(p)
    q = target.spec.programs["target_entry"].copy()  # a tc program cannot target programs
    q.attach_prog = tprog
    with pytest.raises(LoadError, match="cannot attach to another BPF program"):
        prog_target_attrs(q)


def test_freplace_without_target_is_explained(tracers: CollectionSpec) -> None:
    with pytest.raises(LoadError, match=r"attach_targets=\{'bpfkit_replacement'"):
        bpfkit.load(tracers, autoload=["bpfkit_replacement"])


@pytest.mark.parametrize("name,pt,at", [
    ("on_entry", ProgramType.TRACING, AttachType.TRACE_FENTRY),
    ("on_exit", ProgramType.TRACING, AttachType.TRACE_FEXIT),
    ("bpfkit_replacement", ProgramType.EXT, 0),
])
def test_load_on_this_kernel(target: Any, tracers: CollectionSpec, name: str, pt: ProgramType,
                             at: int) -> None:
    """Where the kernel refuses the program type, the error says which program and why;
    elsewhere the program loads against the target's function."""
    from bpfkit.attach import features
    feat = features.has_attach_type(pt, at) if at else features.has_program_type(pt)
    tprog = target.programs["target_entry"]
    if feat.supported:
        with bpfkit.load(tracers, autoload=[name], attach_targets={name: tprog}) as coll:
            info = coll.programs[name].info()
            assert info.attach_btf_id == prog_target_attrs(
                coll.spec.programs[name])["attach_btf_id"]
        return
    with pytest.raises(KernelError) as ei:
        bpfkit.load(tracers, autoload=[name], attach_targets={name: tprog})
    msg = str(ei.value)
    assert f"program {name!r}" in msg
    assert f"the kernel refuses {pt.name} programs" in msg
    assert "bpfkit_target_fn" in msg
    assert "TRACING/EXT" in msg
