"""Lifecycle: SIGTERM behaves as Ctrl-C (detach, summary, exit 0) for `bpfkit run` and the
tools, and bpfkit never replaces a SIGTERM handler the program installed itself."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"
EXAMPLE = ROOT / "src" / "bpfkit" / "examples" / "demo.bpf.c"


def _wait_for(p: subprocess.Popen[str], needle: str, timeout: float = 60.0) -> str:
    """Read stderr lines until ``needle`` shows (the command is attached)."""
    assert p.stderr is not None
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never printed: {''.join(seen)}")


@pytest.mark.requires_root
def test_timeout_run_prints_maps_and_exits_0() -> None:
    # `timeout` sends SIGTERM; --preserve-status gives bpfkit's own exit status
    p = subprocess.run(["timeout", "--preserve-status", "6", BPFKIT, "run", str(EXAMPLE)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "globals:" in p.stdout and "execs =" in p.stdout, p.stdout[-2000:]
    assert "Traceback" not in p.stderr


@pytest.mark.requires_root
@pytest.mark.parametrize("tool,args,summary", [
    ("syscount", ["-i", "5"], "COUNT"),     # an interval tool prints its last interval
    ("opensnoop", ["-n", "bpfkit-no-such-file"], None),
])
def test_sigterm_to_a_tool_is_ctrl_c(tool: str, args: list[str], summary: str | None) -> None:
    p = subprocess.Popen([BPFKIT, tool, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(p, "attached")
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    if summary:
        assert summary in out, out


_EMBED = textwrap.dedent("""
    import signal, sys
    import bpfkit
    from bpfkit import cleanup
    from bpfkit.manager import Manager, Probe

    def mine(signum, frame):
        pass

    signal.signal(signal.SIGTERM, mine)

    class Thing:
        def close(self):
            pass

    t = Thing()
    cleanup.track(t)          # would install the exit-cleanup handler
    assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
    with Manager(sys.argv[1], [Probe("on_exec")]) as m:
        assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is mine
    cleanup.untrack(t)
    print("kept")
""")


@pytest.mark.requires_root
def test_cleanup_and_manager_keep_the_programs_own_sigterm_handler(tmp_path: Path) -> None:
    from bpfkit.build import compile_bpf
    obj = tmp_path / "demo.bpf.o"
    compile_bpf(EXAMPLE, obj)
    p = subprocess.run([sys.executable, "-c", _EMBED, str(obj)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert p.returncode == 0 and "kept" in p.stdout, p.stderr


# ------------------------------------------------------------------ crash leftovers


def _kill_rounds_setup():  # type: ignore[no-untyped-def]
    from bpfkit import asm, netns
    from bpfkit._consts import AttachType, ProgramType
    from bpfkit.program import Program
    ret = [asm.mov64_imm(asm.R0, 0), asm.exit()]
    progs = {
        "xdp": Program.load(ProgramType.XDP, [asm.mov64_imm(asm.R0, 2), asm.exit()],
                            name="lc_xdp", expected_attach_type=AttachType.XDP),
        "tc": Program.load(ProgramType.SCHED_CLS, ret, name="lc_tc"),
        "up": Program.load(ProgramType.KPROBE, ret, name="lc_up"),
        "cg": Program.load(ProgramType.CGROUP_SKB, [asm.mov64_imm(asm.R0, 1), asm.exit()],
                           name="lc_cg", expected_attach_type=AttachType.CGROUP_INET_EGRESS),
    }
    return progs, netns


def _attach_everything(progs: dict, a: object, b: object, cg: str) -> None:  # type: ignore[type-arg]
    """What a killed bpfkit process was doing: netlink XDP, legacy tc (making the qdisc
    on one device, using someone else's on another), tcx, a tracefs uprobe event and a
    BPF_PROG_ATTACH cgroup program."""
    from bpfkit._consts import AttachType
    from bpfkit.attach import cgroup, net, uprobe
    net.attach_xdp(progs["xdp"], a.peer, mode="generic", replace=True, netns=a.ns)  # type: ignore[attr-defined]
    net.attach_tc(progs["tc"], a.peer, "ingress", netns=a.ns)  # type: ignore[attr-defined]
    net.attach_tc(progs["tc"], b.peer, "egress", netns=b.ns)  # type: ignore[attr-defined]
    net.attach_tcx(progs["tc"], a.peer, "egress", netns=a.ns)  # type: ignore[attr-defined]
    uprobe.attach_uprobe(progs["up"], "c", "getpid", pid=os.getpid(), use_pmu=False)
    cgroup.attach_cgroup(progs["cg"], cg, AttachType.CGROUP_INET_EGRESS, use_link=False)


def _fork_attach(progs: dict, a: object, b: object, cg: str) -> tuple[int, int]:  # type: ignore[type-arg]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "bpfkit process" that gets killed
        try:
            os.close(r)
            _attach_everything(progs, a, b, cg)
            os.write(w, b"ok")
            time.sleep(60)
        finally:
            os._exit(1)
    os.close(w)
    return pid, r


def _assert_nothing_left(a: object, b: object, cg: str, pid: int, run_dir: Path) -> None:
    from bpfkit import netlink
    from bpfkit.attach import net, perf
    with netlink.Netlink(a.ns) as nl:  # type: ignore[attr-defined]
        assert nl.filters(a.peer) == [], "tc filters left"  # type: ignore[attr-defined]
        assert not nl.has_clsact(a.peer), "the clsact qdisc bpfkit made was left"  # type: ignore[attr-defined]
        assert nl.xdp_query(a.peer).ids() == {}, "XDP program left"  # type: ignore[attr-defined]
    with netlink.Netlink(b.ns) as nl:  # type: ignore[attr-defined]
        assert nl.filters(b.peer) == [], "tc filter left on the other device"  # type: ignore[attr-defined]
        assert nl.has_clsact(b.peer), "cleanup removed a clsact qdisc it did not make"  # type: ignore[attr-defined]
    # the same through iproute2, which knows nothing of bpfkit
    tc = subprocess.run(["tc", "-n", a.ns.name, "qdisc", "show", "dev", a.peer],  # type: ignore[attr-defined]
                        capture_output=True, text=True, check=True).stdout
    assert "clsact" not in tc, tc
    ip = subprocess.run(["ip", "-n", a.ns.name, "link", "show", "dev", a.peer],  # type: ignore[attr-defined]
                        capture_output=True, text=True, check=True).stdout
    assert "xdp" not in ip, ip
    tcb = subprocess.run(["tc", "-n", b.ns.name, "qdisc", "show", "dev", b.peer],  # type: ignore[attr-defined]
                         capture_output=True, text=True, check=True).stdout
    assert "clsact" in tcb, tcb
    assert net.query_tcx(a.peer, "egress", netns=a.ns).prog_ids == []  # type: ignore[attr-defined]
    with open(perf.tracefs_file("uprobe_events")) as f:
        events = f.read()
    assert f"bpfkit_{pid}_" not in events, events
    bt = subprocess.run(["bpftool", "-j", "cgroup", "show", cg], capture_output=True,
                        text=True, check=True).stdout.strip()
    assert bt in ("", "[]"), bt
    assert [n for n in os.listdir(run_dir) if n.endswith(".json")] == [], "records left"


@pytest.mark.requires_root
def test_sigkill_at_random_points_then_cleanup_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from bpfkit.attach import cgroup
    from bpfkit.testing.net import VethPair
    run_dir = tmp_path / "run"
    monkeypatch.setenv("BPFKIT_RUN_DIR", str(run_dir))
    progs, _ = _kill_rounds_setup()
    cg = os.path.join(cgroup.cgroup2_mount(), f"bpfkit-lifecycle-{os.getpid()}")
    os.mkdir(cg)
    rng = random.Random(1414)
    try:
        with VethPair() as a, VethPair() as b:
            # someone else's clsact qdisc: it must survive every cleanup
            subprocess.run(["tc", "-n", b.ns.name, "qdisc", "add", "dev", b.peer, "clsact"],
                           check=True)
            # calibrate: how long the whole attach sequence takes
            t0 = time.monotonic()
            pid, r = _fork_attach(progs, a, b, cg)
            assert os.read(r, 2) == b"ok"
            span = time.monotonic() - t0
            os.close(r)
            rounds = [span] + [rng.uniform(0, span * 1.2) for _ in range(32)]
            for i, delay in enumerate(rounds):
                if i:
                    pid, r = _fork_attach(progs, a, b, cg)
                    time.sleep(delay)
                    os.close(r)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                if i % 8 == 0:  # the command itself...
                    p = subprocess.run([BPFKIT, "cleanup"], capture_output=True, text=True,
                                       timeout=60)
                    assert p.returncode == 0, p.stderr
                    said = p.stdout
                else:  # ... or its code in this process (no interpreter start-up each round)
                    from bpfkit.cli import main
                    out = io.StringIO()
                    with contextlib.redirect_stdout(out):
                        assert main(["cleanup"]) == 0
                    said = out.getvalue()
                try:
                    _assert_nothing_left(a, b, cg, pid, run_dir)
                except AssertionError as e:
                    raise AssertionError(f"round {i} (killed {delay * 1e3:.1f} ms into a "
                                         f"{span * 1e3:.1f} ms attach): {e}\n{said}")
    finally:
        for p_ in progs.values():
            p_.close()
        os.rmdir(cg)


@pytest.mark.requires_root
def test_probe_event_names_never_collide_and_dead_ones_are_reclaimed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bpfkit import cleanup
    from bpfkit.attach import perf, uprobe
    monkeypatch.setenv("BPFKIT_RUN_DIR", str(tmp_path))
    libc = uprobe.resolve_binary("c")
    off = uprobe.resolve_symbol_offset(libc, "getpid")
    target = f"{libc}:0x{off:x}"
    # A dead process that had our pid: same pid, another start time, no record left.
    start = cleanup.process_start_time() or 0
    stale = f"bpfkit_{os.getpid()}_{start + 1}_abcdef_1"
    path = perf.tracefs_file("uprobe_events")
    perf._write_line(path, f"p:uprobes/{stale} {target}\n")
    perf._reclaimed.discard("uprobe_events")  # this process's first event: reclaims
    try:
        mine = perf.add_probe_event("uprobe_events", "p", target, group="uprobes")
        try:
            assert mine.name.startswith(f"bpfkit_{os.getpid()}_{start}_")
            with open(path) as f:
                events = f.read()
            # reclaimed on first use in this process, while our own live event stays
            assert stale not in events and mine.name in events
            assert perf.reclaim_stale_events("uprobe_events") == []
            # a forked child (a new process) makes names of its own
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    ev = perf.add_probe_event("uprobe_events", "p", target, group="uprobes")
                    os.write(w, ev.name.encode())
                    time.sleep(60)
                finally:
                    os._exit(1)
            os.close(w)
            child_name = os.read(r, 200).decode()
            os.close(r)
            assert child_name.startswith(f"bpfkit_{pid}_") and child_name != mine.name
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            # killed without a chance to clean: its record says so, and the name too
            assert [r.data["name"] for r in cleanup.stale()] == [child_name]
            for rec in cleanup.stale():
                cleanup.forget(rec.token)  # even with the record lost ...
            assert perf.reclaim_stale_events("uprobe_events") == [f"uprobes/{child_name}"]
        finally:
            mine.remove()
    finally:
        with contextlib.suppress(OSError):
            perf._write_line(path, f"-:uprobes/{stale}\n")
