"""Adjustments libbpf makes while loading an object, made the same way by bpfkit.

Each test here is the proof cited in docs/libbpf-compat.md; the corpus test
(tests/corpus/) compares whole objects with libbpf itself.
"""

from __future__ import annotations

import errno
import os

import pytest

import bpfkit
from bpfkit._consts import AttachType, MapType
from bpfkit.attach import features
from bpfkit.errors import NotFound
from bpfkit.loader import map_defaults, ringbuf_size
from bpfkit.maps import possible_cpus
from bpfkit.sections import SecFlag
from bpfkit.spec import CollectionSpec, MapSpec

PAGE = os.sysconf("SC_PAGE_SIZE")


def test_ringbuf_size_rounds_up_to_power_of_two_pages() -> None:
    assert ringbuf_size(0) == 0
    assert ringbuf_size(PAGE) == PAGE
    assert ringbuf_size(PAGE * 4) == PAGE * 4
    assert ringbuf_size(PAGE * 3) == PAGE * 4
    assert ringbuf_size(1) == PAGE
    assert ringbuf_size(PAGE * 4 + 1) == PAGE * 8
    assert ringbuf_size(256 * 1024) == 256 * 1024


def test_map_defaults_only_fill_what_libbpf_fills() -> None:
    perf = MapSpec("p", MapType.PERF_EVENT_ARRAY, 4, 4, 0)
    sized = MapSpec("q", MapType.PERF_EVENT_ARRAY, 4, 4, 3)
    hash_ = MapSpec("h", MapType.HASH, 4, 4, 0)
    outer = MapSpec("o", MapType.ARRAY_OF_MAPS, 4, 4, 1,
                    inner=MapSpec("i", MapType.RINGBUF, 0, 0, PAGE + 1))
    for m in (perf, sized, hash_, outer):
        map_defaults(m)
    assert perf.max_entries == possible_cpus()
    assert sized.max_entries == 3
    assert hash_.max_entries == 0  # the kernel's EINVAL is the answer, as with libbpf
    assert outer.inner is not None and outer.inner.max_entries == 2 * PAGE


@pytest.mark.requires_root
def test_perf_array_without_max_entries_and_ringbuf_sizes(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    spec = CollectionSpec.from_file(bpf_obj("compat_defaults.bpf.c"))
    spec.programs["missing_target"].autoload = False
    with bpfkit.load(spec) as coll:
        assert coll.maps["events"].info().max_entries == possible_cpus()
        assert coll.maps["rb"].info().max_entries == ringbuf_size(5000)
        assert coll.maps["urb"].info().max_entries == 4 * PAGE
    # the caller's spec is left as parsed
    assert spec.maps["events"].max_entries == 0


@pytest.mark.requires_root
def test_missing_fentry_target_is_esrch_like_libbpf(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound) as ei:
        bpfkit.load(bpf_obj("compat_defaults.bpf.c"))
    e = ei.value
    assert e.errno == errno.ESRCH
    assert "bpfkit_no_such_kernel_function" in str(e) and "missing_target" in str(e)
    assert "kernel's BTF" in str(e)


@pytest.mark.requires_root
def test_expected_attach_type_probe_and_exp_attach_opt_sections(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    # every kernel since 4.17 takes expected_attach_type, so OPT sections keep theirs
    assert features.has_expected_attach_type()
    from bpfkit.loader import section_attach_type
    spec = CollectionSpec.from_file(bpf_obj("compat_defaults.bpf.c"))
    p = spec.programs["ops"]
    assert p.info.flags & SecFlag.EXP_ATTACH_OPT
    assert section_attach_type(p, p.expected_attach_type) == AttachType.CGROUP_SOCK_OPS
    with bpfkit.load(spec, autoload=["ops"]) as coll:
        assert coll.programs["ops"].expected_attach_type == AttachType.CGROUP_SOCK_OPS


@pytest.mark.requires_root
def test_rodata_is_bound_to_every_program(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    """libbpf binds .rodata to each program (BPF_PROG_BIND_MAP), used or not."""
    with bpfkit.load(bpf_obj("compat_defaults.bpf.c"), autoload=["on_getppid", "ops"]) as coll:
        rodata = next(m for n, m in coll.maps.items() if n.startswith(".rodata"))
        rid = rodata.info().id
        for p in coll.programs.values():
            assert rid in p.info().map_ids, p.name
        # an unknown LINUX_* extern declared __weak reads 0
        assert coll.variables["linux_unknown"].value == 1  # not yet run: initial value
        with coll.programs["on_getppid"].attach():
            os.getppid()
        assert coll.variables["linux_unknown"].value == 0


@pytest.mark.requires_root
def test_unknown_strong_linux_extern_is_einval(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match="LINUX_BPFKIT_UNKNOWN") as ei:
        bpfkit.load(bpf_obj("compat_bad_extern.bpf.c"))
    assert ei.value.errno == errno.EINVAL


@pytest.mark.requires_root
def test_static_only_sections_are_not_mmapable(bpf_obj) -> None:  # type: ignore[no-untyped-def]
    """libbpf's map_is_mmapable: BPF_F_MMAPABLE only when a section has a non-static
    variable; bpfkit then reads and writes its variables through the syscall."""
    from bpfkit._consts import BPF_F_MMAPABLE
    spec = CollectionSpec.from_file(bpf_obj("compat_defaults.bpf.c"))
    assert not spec.maps[".data.statics"].flags & BPF_F_MMAPABLE
    assert spec.maps[".data"].flags & BPF_F_MMAPABLE
    with bpfkit.load(spec, autoload=["on_getppid"]) as coll:
        assert not coll.maps[".data.statics"].info().flags & BPF_F_MMAPABLE
        v = coll.variables["static_only"]
        assert v.value == 7
        v.value = 40
        with coll.programs["on_getppid"].attach():
            os.getppid()
        assert v.value > 40
