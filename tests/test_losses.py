"""Nothing lost silently: failed ring buffer reserve/output calls counted by instrumenting
the program at load (bpfkit.losses), perf buffer losses from the kernel, and `bpfkit run`
and the tools reporting them: printed + lost == what the workload made."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import build_bpf

pytestmark = pytest.mark.requires_root

BPFKIT = shutil.which("bpfkit", path=str(Path(sys.executable).parent)) or "bpfkit"


def _spec():  # type: ignore[no-untyped-def]
    from bpfkit.spec import CollectionSpec
    return CollectionSpec.from_file(build_bpf("lossy.bpf.c"))


def test_instrumentation_is_off_by_default_and_counts_when_on() -> None:
    import bpfkit
    from bpfkit import losses
    from bpfkit.readers import RingBuffer
    spec = _spec()
    sizes = {n: sum(i.size for i in p.instructions) for n, p in spec.programs.items()}
    with bpfkit.load(spec, constants={"targ_pid": os.getpid()}) as coll:
        # off by default: exactly the object's instructions, no hidden map
        assert losses.LOST_MAP not in coll.maps and losses.ringbuf_lost(coll) is None
        assert [sum(i.size for i in p.instructions) for p in coll.spec.programs.values()] \
            == list(sizes.values())
    with bpfkit.load(spec, constants={"targ_pid": os.getpid()},
                     count_ringbuf_losses=True) as coll:
        # reserve in on_getppid, output in the subprogram of on_getpgid, perf output in
        # on_getsid: 5 slots each
        got = {n: sum(i.size for i in p.instructions) for n, p in coll.spec.programs.items()}
        assert got["on_getppid"] == sizes["on_getppid"] + 5
        assert got["on_getpgid"] == sizes["on_getpgid"] + 5
        assert got["on_getsid"] == sizes["on_getsid"] + 5
        coll.attach_all()
        n = 500
        for _ in range(n):  # nobody reads: the 4 KiB ring fills after a few dozen records
            os.getppid()
            os.getpgid(0)
            os.getsid(0)  # no perf buffer reader: every output fails (ENOENT), all counted
        with RingBuffer(coll.maps["events"]) as rb:
            delivered = len(list(rb.read(timeout=0)))
        lost = losses.ringbuf_lost(coll)
        made = coll.variables["made"].value
        assert made == 3 * n
        assert lost is not None and lost > 0 and delivered > 0
        assert delivered + lost == 2 * n, (delivered, lost, made)
        assert losses.perfbuf_lost(coll) == n
        # the program's own branch on the result still works: on_getpgid returned 1 on
        # failures (not observable here), and the verifier took the rewritten jumps


FLOOD = textwrap.dedent("""
    import os, sys
    open("/proc/self/comm", "w").write("bklossy")   # what lossy.bpf.c selects
    for _ in range(int(sys.argv[1])):
        os.getppid()      # ring buffer: reserve/submit
        os.getpgid(0)     # ring buffer: bpf_ringbuf_output in a subprogram
        os.getsid(0)      # perf buffer: bpf_perf_event_output
""")


def test_run_reports_ring_and_perf_losses_exactly(tmp_path: Path) -> None:
    """`bpfkit run` of an object with a 4 KiB ring buffer and a perf buffer, under a flood
    of 102,000 events: every event is either printed or counted as lost."""
    n = 34000
    obj = build_bpf("lossy.bpf.c")
    p = subprocess.run([BPFKIT, "run", str(obj), "--json", "--", sys.executable, "-c", FLOOD,
                        str(n)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    ring = sum(1 for x in lines if x["type"] == "event" and x["map"] == "events")
    perf = sum(1 for x in lines if x["type"] == "event" and x["map"] == "perf_events")
    (lost,) = [x for x in lines if x["type"] == "lost"]
    made = lines[-1]["maps"]["globals"]["made"]
    assert made == 3 * n
    assert lost["ringbuf"]["lost"] > 0 and lost["perf"]["lost"] > 0, lost
    assert ring + lost["ringbuf"]["lost"] == 2 * n, (ring, lost)
    assert perf + lost["perf"]["lost"] == n, (perf, lost)
    assert lost["total"] == lost["ringbuf"]["lost"] + lost["perf"]["lost"]
    # the kernel's own per-CPU PERF_RECORD_LOST counts are there too (they may trail)
    assert sum(lost["perf"]["kernel_per_cpu"].values()) <= lost["perf"]["lost"]
    # and the plain text says it in words
    t = subprocess.run([BPFKIT, "run", str(obj), "--", sys.executable, "-c", FLOOD, "3000"],
                       capture_output=True, text=True, timeout=300)
    assert t.returncode == 0, t.stderr[-2000:]
    assert " events lost — ring buffer events: " in t.stdout, t.stdout[-1000:]


OPENS = textwrap.dedent("""
    import os, sys
    sys.stdin.readline()                     # wait until the tool is attached
    path = "/nonexistent-bpfkit-flood"
    for _ in range(int(sys.argv[1])):
        try:
            os.open(path, os.O_RDONLY, dir_fd=4242)
        except OSError:
            pass
""")


@pytest.mark.parametrize("as_json", [True, False])
def test_opensnoop_flood_printed_plus_lost_is_what_was_opened(as_json: bool) -> None:
    """100,000 opens by one process: opensnoop prints some and counts the rest (its BPF
    code counts failed ring buffer reserves), never fewer in total."""
    n = 100_000
    work = subprocess.Popen([sys.executable, "-c", OPENS, str(n)], stdin=subprocess.PIPE,
                            text=True)
    tool = subprocess.Popen([BPFKIT, "opensnoop", "-p", str(work.pid),
                             *(["--json"] if as_json else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert tool.stderr is not None and work.stdin is not None
        while "attached" not in (line := tool.stderr.readline()):
            assert line, "opensnoop exited before attaching"
        chunks: list[str] = []  # read as it comes, as a terminal or a pipe reader would
        reader = threading.Thread(target=lambda: chunks.append(tool.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        work.stdin.write("go\n")
        work.stdin.close()
        assert work.wait(timeout=120) == 0
        time.sleep(1.5)
        tool.send_signal(signal.SIGINT)
        err = tool.stderr.read()
        tool.wait(timeout=60)
        reader.join(timeout=60)
        out = "".join(chunks)
    finally:
        for p in (work, tool):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert tool.returncode == 0, err
    if as_json:
        printed = sum(1 for x in out.splitlines()
                      if x.startswith("{") and json.loads(x)["path"].endswith("flood"))
        (lost,) = [json.loads(x)["lost"] for x in err.splitlines() if '"lost"' in x]
    else:
        printed = sum(1 for x in out.splitlines() if x.endswith("/nonexistent-bpfkit-flood"))
        lost = int(re.search(r"# (\d+) events lost", err).group(1))  # type: ignore[union-attr]
    assert lost > 0 and printed > 0
    assert printed + lost == n, (printed, lost)
