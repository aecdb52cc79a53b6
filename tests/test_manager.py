"""The Manager drives real programs through every life-cycle path on this kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import build_bpf

from bpfkit import introspect
from bpfkit.manager import Manager, MapOptions, OneOf, Probe

pytestmark = pytest.mark.requires_root


def _open_n(n: int) -> None:
    for _ in range(n):
        os.close(os.open("/dev/null", os.O_RDONLY))


def _our_links(prog_ids: set[int]) -> list:
    return [li for li in introspect.links() if li.prog_id in prog_ids]


def test_fallback_picks_first_hook_the_kernel_has() -> None:
    obj = build_bpf("mgr.bpf.c")
    probes = [Probe("fentry_open", fallbacks=["kprobe_open", "tp_open"])]
    with Manager(obj, probes, constants={"targ_pid": os.getpid()}) as m:
        st = m.report()[0]
        assert st.attached
        chosen = m.chosen("fentry_open")
        # Which hook wins depends on the kernel: a kernel with fentry takes it; this one
        # refuses fentry (EPERM) and has no kprobes, so the tracepoint is chosen.
        from bpfkit.attach import features
        if not features.has_kprobes().supported and chosen != "fentry_open":
            assert chosen == "tp_open", st
            assert "kprobe" in st.reason.lower()
        variant = {"fentry_open": 1, "kprobe_open": 2, "tp_open": 3}[chosen]
        _open_n(25)
        time.sleep(0.05)
        counts = dict(m.map("counts").items())  # u32 -> u64, decoded through BTF
        assert counts.get(variant, 0) >= 25  # other opens by this process may add a few
        ids = {p.info().id for p in m.programs.values()}
    assert not _our_links(ids)


def test_map_editor_constants_and_ring_buffer() -> None:
    obj = build_bpf("mgr.bpf.c")
    with Manager(obj, [Probe("tp_getppid")], constants={"targ_pid": os.getpid()},
                 maps={"counts": MapOptions(max_entries=64)}) as m:
        assert m.map("counts").info().max_entries == 64
        for _ in range(10):
            os.getppid()
        assert m.collection.variables["hits"].value == 10
        assert m.collection.variables["targ_pid"].value == os.getpid()
        rb = m.ring_buffer("events")
        got = []
        rb.poll(lambda rec: got.append(bytes(rec)), timeout=0.5)
        assert len(got) == 10
        assert all(int.from_bytes(r[:4], "little") == os.getpid() for r in got)


def test_pause_resume_add_detach() -> None:
    obj = build_bpf("mgr.bpf.c")
    with Manager(obj, [Probe("tp_getppid")], constants={"targ_pid": os.getpid()}) as m:
        hits = m.collection.variables["hits"]
        os.getppid()
        assert hits.value == 1
        m.pause("tp_getppid")
        os.getppid()
        assert hits.value == 1
        m.resume("tp_getppid")
        os.getppid()
        assert hits.value == 2
        # the same program on a second hook at run time
        st = m.clone_probe("tp_getppid", new_uid="second",
                           options={"tracepoint": "syscalls/sys_enter_getpid"})
        assert st.attached, st
        os.getppid()
        os.getpid()
        assert hits.value == 4  # both attachments fire
        m.detach_probe("tp_getppid", uid="second")
        os.getpid()
        os.getppid()
        assert hits.value == 5


def test_one_of_group_and_required_failure() -> None:
    obj = build_bpf("mgr.bpf.c")
    with Manager(obj, [OneOf([Probe("kprobe_open"), Probe("tp_open")])],
                 constants={"targ_pid": os.getpid()}) as m:
        attached = [s for s in m.report() if s.attached]
        assert len(attached) == 1
    # a required probe that cannot attach anywhere fails start() and leaves nothing behind
    from bpfkit.attach import features
    if features.has_kprobes().supported:
        pytest.skip("this kernel has kprobes: the failure path needs a kernel without them")
    before = {li.id for li in introspect.links()}
    with pytest.raises(Exception) as ei:
        Manager(obj, [Probe("kprobe_open")]).start()
    assert "CONFIG_KPROBES" in str(ei.value)
    assert {li.id for li in introspect.links()} <= before


def test_unknown_names_are_clear_errors() -> None:
    obj = build_bpf("mgr.bpf.c")
    with pytest.raises(Exception, match="nosuch"):
        Manager(obj, [Probe("nosuch")]).start()
    with pytest.raises(Exception, match="nomap"):
        Manager(obj, [Probe("tp_open")], maps={"nomap": MapOptions(max_entries=2)}).start()


def test_test_run_of_a_probe() -> None:
    obj = build_bpf("mgr.bpf.c")
    with Manager(obj, [Probe("tp_getppid")]) as m:
        prog = m.program("tp_getppid")
        assert prog.info().name.startswith("tp_getppid")


@pytest.mark.allow_fd_leak
def test_sigterm_and_sigkill_leave_nothing_attached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    obj = build_bpf("mgr.bpf.c")
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        from bpfkit.manager import Manager, Probe
        m = Manager({str(obj)!r}, [Probe("tp_getppid")])
        m.start()
        ids = [p.info().id for p in m.programs.values()]
        print(" ".join(map(str, ids)), flush=True)
        while True:
            time.sleep(0.1)
    """))
    for sig in ("TERM", "KILL"):
        p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()  # type: ignore[union-attr]
        ids = {int(x) for x in line.split()}
        assert ids and _our_links(ids)
        p.send_signal(15 if sig == "TERM" else 9)
        p.wait(timeout=10)
        p.stdout.close()  # type: ignore[union-attr]
        # bpf links are fds: the kernel drops them when the process dies either way
        deadline = time.time() + 5
        while _our_links(ids) and time.time() < deadline:
            time.sleep(0.05)
        assert not _our_links(ids), sig
