"""Feature probes against the running kernel: answers, reasons, caching, require()."""

from __future__ import annotations

import errno
import os
import platform

import pytest

from bpfkit._consts import AttachType, HelperId, LinkType, MapType, ProgramType
from bpfkit.attach import features as ft
from bpfkit.errors import KernelError, MissingFeature

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="feature probes load programs: root")


def test_feature_object_and_require() -> None:
    yes = ft.Feature("thing", True, "because")
    no = ft.Feature("other thing", False, "this kernel was built without CONFIG_X")
    assert yes and not no
    assert ft.require(yes) is yes
    with pytest.raises(MissingFeature) as ei:
        ft.require(no)
    assert "other thing is not available" in str(ei.value)
    assert "CONFIG_X" in str(ei.value)


def test_kernel_version_matches_uname() -> None:
    v = ft.kernel_version()
    assert platform.release().startswith(f"{v[0]}.{v[1]}")


@pytest.mark.parametrize("pt", [ProgramType.SOCKET_FILTER, ProgramType.KPROBE,
                                ProgramType.TRACEPOINT, ProgramType.XDP,
                                ProgramType.CGROUP_SKB, ProgramType.RAW_TRACEPOINT,
                                ProgramType.CGROUP_SOCK_ADDR, ProgramType.SK_LOOKUP,
                                ProgramType.SYSCALL, ProgramType.PERF_EVENT])
def test_common_program_types(pt: ProgramType) -> None:
    f = ft.has_program_type(pt)
    _expect_since(_PROG_SINCE.get(pt, (4, 4)), f)


# Kernel releases that introduced each type: the probe must say yes from there on; an
# older kernel (CI on any kernel the probes describe) may say no, with a reason.
_PROG_SINCE = {ProgramType.RAW_TRACEPOINT: (4, 17), ProgramType.CGROUP_SOCK_ADDR: (4, 17),
               ProgramType.SK_LOOKUP: (5, 9), ProgramType.SYSCALL: (5, 14),
               ProgramType.CGROUP_SKB: (4, 10)}
_MAP_SINCE = {MapType.LRU_HASH: (4, 10), MapType.LPM_TRIE: (4, 11), MapType.RINGBUF: (5, 8),
              MapType.STACK_TRACE: (4, 6), MapType.QUEUE: (4, 20),
              MapType.BLOOM_FILTER: (5, 16), MapType.TASK_STORAGE: (5, 11),
              MapType.SK_STORAGE: (5, 2), MapType.ARRAY_OF_MAPS: (4, 12),
              MapType.USER_RINGBUF: (6, 1), MapType.CGROUP_STORAGE: (4, 19),
              MapType.STRUCT_OPS: (5, 6)}


def _expect_since(since: tuple[int, int], f: object) -> None:
    """Supported where the kernel is at least ``since``; else either answer, with a reason."""
    if tuple(ft.kernel_version()[:2]) >= since:
        assert f, getattr(f, "reason", "")
    elif not f:
        assert getattr(f, "reason", ""), "a refusal must say why"


def test_unknown_program_and_map_type() -> None:
    f = ft.has_program_type(999)
    assert not f and "EINVAL" in f.reason
    assert not ft.has_map_type(999)


@pytest.mark.parametrize("mt", [MapType.HASH, MapType.ARRAY, MapType.PERCPU_ARRAY,
                                MapType.LRU_HASH, MapType.LPM_TRIE, MapType.RINGBUF,
                                MapType.STACK_TRACE, MapType.QUEUE, MapType.BLOOM_FILTER,
                                MapType.TASK_STORAGE, MapType.SK_STORAGE,
                                MapType.ARRAY_OF_MAPS, MapType.USER_RINGBUF,
                                MapType.CGROUP_STORAGE, MapType.STRUCT_OPS])
def test_map_types(mt: MapType) -> None:
    f = ft.has_map_type(mt)
    _expect_since(_MAP_SINCE.get(mt, (4, 4)), f)


def test_arena_probe_agrees_with_map_create() -> None:
    """ARENA maps are allowed on some 6.18 builds and refused (EPERM) on others: the probe's
    verdict must be what Map.create then does, whichever way this kernel answers."""
    from bpfkit import Map
    from bpfkit._consts import BPF_F_MMAPABLE
    f = ft.has_map_type(MapType.ARENA)
    try:
        with Map.create(MapType.ARENA, 0, 0, 1, flags=BPF_F_MMAPABLE) as a:
            created = a.info().type == MapType.ARENA
    except KernelError as e:
        created = False
        assert not f.supported and errno.errorcode[e.errno] in f.reason, (f, e)
    assert bool(f.supported) == created, f


def test_tracing_is_answered_per_attach_type() -> None:
    """tp_btf and iter work on this kernel while fentry is refused, all TRACING."""
    tp = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_RAW_TP)
    it = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_ITER)
    fe = ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY)
    assert tp.supported, tp.reason
    assert it.supported, it.reason
    if not fe:
        assert "EPERM" in fe.reason
        assert "trace_fentry" in fe.name
        tr = ft.has_program_type(ProgramType.TRACING)
        assert tr.supported and "trace_raw_tp" in tr.reason and "trace_fentry" in tr.reason


def test_lsm_and_cgroup_attach_types() -> None:
    lsm = ft.has_attach_type(ProgramType.LSM, AttachType.LSM_MAC)
    assert lsm.reason
    assert ft.has_attach_type(ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT)
    assert ft.has_attach_type(ProgramType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS)


def test_helpers() -> None:
    assert ft.has_helper(ProgramType.TRACEPOINT, HelperId.get_current_pid_tgid)
    f = ft.has_helper(ProgramType.SOCKET_FILTER, 36)  # probe_write_user: tracing only
    assert not f and "verifier said" in f.reason
    assert ft.has_helper(ProgramType.XDP, 1)  # map_lookup_elem
    assert not ft.has_helper(ProgramType.XDP, 0x7FFF)


def test_link_types() -> None:
    for lt in (LinkType.RAW_TRACEPOINT, LinkType.TRACING, LinkType.CGROUP, LinkType.ITER,
               LinkType.PERF_EVENT, LinkType.TCX, LinkType.NETFILTER, LinkType.SOCKMAP,
               LinkType.UPROBE_MULTI):
        f = ft.has_link_type(lt)
        assert f.supported, f"{lt.name}: {f.reason}"
    assert ft.has_tcx()


def test_hook_features_match_kernel_config() -> None:
    cfg = ft.kernel_config()
    kp = ft.has_kprobes()
    if cfg.get("CONFIG_KPROBES") == "n":
        assert not kp and "CONFIG_KPROBES" in kp.reason
    km = ft.has_kprobe_multi()
    if cfg.get("CONFIG_FPROBE") == "n":
        assert not km and "CONFIG_FPROBE" in km.reason
        assert not ft.has_attach_type(ProgramType.KPROBE, AttachType.TRACE_KPROBE_MULTI)
        assert not ft.has_link_type(LinkType.KPROBE_MULTI)
    if cfg.get("CONFIG_UPROBES") == "y":
        assert ft.has_uprobes()
    if cfg.get("CONFIG_NETKIT") == "n":
        nk = ft.has_link_type(LinkType.NETKIT)
        assert not nk and "CONFIG_NETKIT" in nk.reason


def test_cookie_and_syscall_wrapper() -> None:
    assert ft.has_bpf_cookie()
    sw = ft.has_syscall_wrapper()
    with open("/proc/kallsyms") as f:
        has = any(line.rstrip().endswith(" __x64_sys_bpf") for line in f)
    if platform.machine() == "x86_64":
        assert sw.supported == has


def test_probes_are_cached_and_leave_no_fds() -> None:
    before = set(os.listdir("/proc/self/fd"))
    a = ft.has_link_type(LinkType.PERF_EVENT)
    assert ft.has_link_type(LinkType.PERF_EVENT) is a
    ft.clear_cache()
    b = ft.has_link_type(LinkType.PERF_EVENT)
    assert b == a and b is not a
    ft.has_map_type(MapType.TASK_STORAGE)
    ft.has_attach_type(ProgramType.TRACING, AttachType.TRACE_FENTRY)
    assert set(os.listdir("/proc/self/fd")) == before
