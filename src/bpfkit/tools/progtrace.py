"""progtrace: how often and how long other BPF programs run (by program id).

Best: fentry/fexit programs attached to each target program (the target's main function,
found through its BTF func info) time every run.  Kernels that refuse TRACING programs
(this project's CI kernel answers EPERM) still account every run when BPF stats are on:
then the tool holds BPF_ENABLE_STATS and reports run_cnt / run_time_ns deltas.  ``-v``
says which it used and why.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import asm, introspect
from .. import syscall as sc
from ..errors import BpfkitError
from ..program import Program, ProgramInfo
from .base import Tool, object_path, positive_u32


@dataclass
class Target:
    """One traced program: its fd (keeps the id valid) and how it is measured."""

    id: int
    prog: Program
    info: ProgramInfo
    method: str = "stats"           # "fentry/fexit" or "stats"
    why: str = ""
    coll: Any = None                # maps of the fentry/fexit copy
    progs: list[Program] = field(default_factory=list)
    links: list[Any] = field(default_factory=list)
    last: tuple[int, int, int] = (0, 0, 0)   # count, total_ns, max_ns at the last report

    def drop_fentry(self) -> None:
        for lk in self.links:
            lk.close()
        for p in self.progs:
            p.close()
        if self.coll is not None:
            self.coll.close()
        self.links, self.progs, self.coll = [], [], None
        self.method = "stats"

    def close(self) -> None:
        self.drop_fentry()
        self.prog.close()


def main_func_btf_id(prog: Program) -> int:
    """The BTF type id of a program's main function (its first func_info record)."""
    i = sc.obj_info(prog.fd, sc.ProgInfo())
    if not i.btf_id or not i.nr_func_info:
        raise BpfkitError(f"program {prog.fd} was loaded without BTF func info: fentry needs it")
    rec = i.func_info_rec_size or 8
    buf = ctypes.create_string_buffer(rec * i.nr_func_info)
    sc.obj_info(prog.fd, sc.ProgInfo(nr_func_info=i.nr_func_info, func_info_rec_size=rec,
                                     func_info=ctypes.addressof(buf)))
    return int.from_bytes(buf.raw[4:8], "little")


def _resolved(insns: list[asm.Instruction], maps: dict[str, Any], name: str) -> list[asm.Instruction]:
    out = []
    for i in insns:
        j = asm.Instruction(i.opcode, i.dst, i.src, i.off, i.imm)
        if i.ref_kind == "map":
            j.src, j.imm = asm.BPF_PSEUDO_MAP_FD, maps[i.ref or ""].fd
        elif i.ref_kind not in (None, "call"):
            raise BpfkitError(f"progtrace: {name} has a {i.ref_kind} reference it cannot load")
        out.append(j)
    return out


def attach_fentry(t: Target, spec: Any) -> None:
    """Load progtrace's fentry/fexit pair against ``t.prog`` and attach it."""
    from .._consts import ProgramType
    from ..attach.tracing import attach_trace
    fn = main_func_btf_id(t.prog)
    t.coll = spec.load(autoload=[])     # maps only: the programs need a target to load
    for name in ("prog_entry", "prog_exit"):
        ps = spec.programs[name]
        p = Program.load(ProgramType.TRACING, _resolved(ps.instructions, t.coll.maps, name),
                         license=ps.license, name=name,
                         expected_attach_type=ps.expected_attach_type, attach_btf_id=fn,
                         attach_prog_fd=t.prog.fd)
        t.progs.append(p)
    # The target was fixed at load time (attach_prog_fd): BPF_LINK_CREATE takes no target
    # fd for fentry/fexit (a target fd there means re-targeting, for freplace only).
    for p in t.progs:
        t.links.append(attach_trace(p))
    t.method = "fentry/fexit"


class ProgTrace(Tool):
    name = "progtrace"
    help = "how often and how long other BPF programs run"
    interval_tool = True
    options = ("time", "duration", "interval")
    differs = "BCC has no progtrace (bpftool prog profile and bpftop are the models)."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--id", type=positive_u32, action="append", default=[],
                       help="program id to trace (repeatable; default: every program, "
                            "from BPF stats)")
        p.add_argument("-n", "--name", help="programs whose name contains this")
        p.add_argument("--stats", action="store_true",
                       help="use BPF stats even where fentry/fexit would work")
        p.add_argument("--all", action="store_true", help="also list programs that did not run")

    def _targets(self, args: argparse.Namespace) -> list[int]:
        if args.id:
            return list(args.id)
        ids = [p.id for p in introspect.programs()
               if not args.name or args.name in p.name]
        if args.name and not ids:
            raise BpfkitError(f"progtrace: no loaded program's name contains {args.name!r}")
        return ids

    def run(self, args: argparse.Namespace) -> int:
        targets: list[Target] = []
        stats_fd = -1
        try:
            ids = self._targets(args)
            spec = None
            for pid_ in ids:
                try:
                    prog = Program.from_id(pid_)
                except BpfkitError as e:
                    raise BpfkitError(f"progtrace: no BPF program with id {pid_}: {e}") from None
                targets.append(Target(pid_, prog, prog.info()))
            # fentry/fexit only for programs named by id: one trampoline pair per program.
            if args.id and not args.stats:
                from ..spec import CollectionSpec
                spec = CollectionSpec.from_file(object_path("progtrace"))
                for t in targets:
                    try:
                        attach_fentry(t, spec)
                    except (BpfkitError, OSError) as e:
                        t.why = f"fentry/fexit refused: {e}"
                        t.drop_fentry()
            if any(t.method == "stats" for t in targets) or not targets:
                try:
                    stats_fd = sc.enable_stats(0)
                except BpfkitError as e:
                    if not _stats_sysctl_on():
                        raise BpfkitError(f"progtrace: cannot enable BPF stats: {e}") from None
            for t in targets:
                if t.method == "stats":
                    i = t.prog.info()
                    t.last = (i.run_cnt, i.run_time_ns, 0)
            if args.verbose:
                for t in targets:
                    how = ("fentry/fexit on the program" if t.method != "stats" else
                           "BPF stats (run_cnt/run_time_ns)" + (f"; {t.why}" if t.why else ""))
                    print(f"# prog {t.id} ({t.info.name}): {how}", file=sys.stderr)
            if not args.json:
                print("# tracing; Ctrl-C to stop", file=sys.stderr, flush=True)
            self._targets_list = targets
            self._stats_fd = stats_fd
            self._t0 = time.monotonic()
            return self.loop(None, args, {"now": False})  # type: ignore[arg-type]
        except KeyboardInterrupt:
            return 0
        finally:
            for t in targets:
                t.close()
            if stats_fd >= 0:
                os.close(stats_fd)

    def report(self, m: Any, args: argparse.Namespace, final: bool) -> None:
        now = time.monotonic()
        dt = max(now - self._t0, 1e-9)
        self._t0 = now
        ncpu = os.cpu_count() or 1
        rows: list[dict[str, Any]] = []
        known = {t.id for t in self._targets_list}
        if not args.id and not args.name:
            # Programs loaded since start join the list.
            for p in introspect.programs():
                if p.id not in known:
                    try:
                        prog = Program.from_id(p.id)
                    except BpfkitError:
                        continue
                    self._targets_list.append(Target(p.id, prog, p))
        for t in self._targets_list:
            if t.method == "stats":
                try:
                    i = t.prog.info()
                except BpfkitError:
                    continue
                cnt, tot, mx = i.run_cnt, i.run_time_ns, 0
            else:
                s = t.coll.maps["runs"][0]
                cnt, tot, mx = s.count, s.total_ns, s.max_ns
            dc, dtot = cnt - t.last[0], tot - t.last[1]
            t.last = (cnt, tot, mx)
            if not dc and not args.all:
                continue
            rows.append({"id": t.id, "name": t.info.name,
                         "type": getattr(t.info.type, "name", str(t.info.type)).lower(),
                         "method": t.method, "runs": dc, "runs_per_s": round(dc / dt, 1),
                         "avg_ns": round(dtot / dc, 1) if dc else 0.0,
                         "max_ns": mx if t.method != "stats" else None,
                         "total_ns": dtot, "cpu_percent": round(100.0 * dtot / (dt * 1e9 * ncpu), 4),
                         "total_runs": cnt})
        rows.sort(key=lambda r: -r["total_ns"])
        if args.json:
            print(json.dumps({"time": time.time(), "interval_s": round(dt, 3),
                              "programs": rows}), flush=True)
            return
        stamp = datetime.now().strftime("%H:%M:%S") + " " if args.time else ""
        print(f"{stamp}{'ID':>6} {'NAME':<16} {'TYPE':<14} {'RUNS':>9} {'RUNS/s':>10} "
              f"{'AVG ns':>9} {'CPU%':>7}  HOW")
        for r in rows:
            print(f"{stamp}{r['id']:>6} {r['name']:<16} {r['type'][:14]:<14} {r['runs']:>9} "
                  f"{r['runs_per_s']:>10.1f} {r['avg_ns']:>9.0f} {r['cpu_percent']:>7.3f}  "
                  f"{r['method']}")
        print(flush=True)


def _stats_sysctl_on() -> bool:
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


TOOL = ProgTrace()
