"""``bpfkit top``: a live view of the loaded BPF programs from the kernel's BPF stats.

Run counts and run times are only accounted while BPF_ENABLE_STATS is held (or
kernel.bpf_stats_enabled=1), so top holds it for as long as it runs.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from .. import introspect
from .. import syscall as sc
from ..errors import KernelError
from ..program import ProgramInfo


@dataclass
class ProgStat:
    id: int
    type: str
    name: str
    run_cnt: int
    run_time_ns: int
    events_per_s: float
    avg_ns: float
    cpu_percent: float


def _tname(p: ProgramInfo) -> str:
    return p.type.name.lower() if hasattr(p.type, "name") else str(p.type)


def sample(interval: float, stats_fd: int | None = None) -> list[ProgStat]:
    """Two snapshots ``interval`` seconds apart, turned into rates."""
    before = {p.id: p for p in introspect.programs()}
    t0 = time.monotonic()
    time.sleep(interval)
    after = introspect.programs()
    dt = max(time.monotonic() - t0, 1e-9)
    ncpu = os.cpu_count() or 1
    out = []
    for p in after:
        b = before.get(p.id)
        dc = p.run_cnt - (b.run_cnt if b else 0)
        dtm = p.run_time_ns - (b.run_time_ns if b else 0)
        out.append(ProgStat(id=p.id, type=_tname(p), name=p.name, run_cnt=p.run_cnt,
                            run_time_ns=p.run_time_ns, events_per_s=dc / dt,
                            avg_ns=dtm / dc if dc else 0.0,
                            cpu_percent=100.0 * dtm / (dt * 1e9 * ncpu)))
    return out


SORT_KEYS = {"events": "events_per_s", "cpu": "cpu_percent", "avg": "avg_ns", "id": "id",
             "name": "name", "runs": "run_cnt"}


def render(stats: list[ProgStat], sort: str = "cpu") -> str:
    key = SORT_KEYS.get(sort, "cpu_percent")
    rows = sorted(stats, key=lambda s: getattr(s, key), reverse=key not in ("id", "name"))
    lines = [f"{'ID':>6} {'TYPE':<16} {'NAME':<16} {'EVENTS/S':>10} {'AVG NS':>9} "
             f"{'CPU %':>7} {'TOTAL RUNS':>12}"]
    for s in rows:
        lines.append(f"{s.id:>6} {s.type:<16} {s.name:<16} {s.events_per_s:>10.0f} "
                     f"{s.avg_ns:>9.0f} {s.cpu_percent:>7.3f} {s.run_cnt:>12}")
    return "\n".join(lines)


def run(interval: float = 1.0, once: bool = False, sort: str = "cpu", as_json: bool = False,
        count: int = 0) -> int:
    try:
        stats_fd: int | None = sc.enable_stats(0)
    except KernelError as e:
        print(f"bpfkit top: cannot enable BPF run-time stats ({e}); run counts may stay 0",
              file=sys.stderr)
        stats_fd = None
    try:
        n = 0
        while True:
            stats = sample(interval, stats_fd)
            if as_json:
                from ._output import emit_json
                emit_json(stats)
            else:
                if not once and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                print(render(stats, sort))
            n += 1
            if once or (count and n >= count):
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if stats_fd is not None:
            os.close(stats_fd)
