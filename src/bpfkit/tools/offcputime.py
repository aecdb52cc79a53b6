"""offcputime: where tasks block, and for how long: off-CPU time summed per kernel and user
stack, printed at the end (BCC's layout, or folded stacks with ``-f``).

At sched_switch the outgoing task is current, so its stacks are taken there; the time is
added when the task is switched back in (tp_btf, else raw_tp).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..manager import Manager, Probe
from ..symbolize import StackTraceMap, folded
from .base import Tool, plain, positive_int

_TRACER_FRAMES = ("bpf_prog_", "bpf_trace_run", "__traceiter_", "__bpf_trace_")


def _drop_tracer(frames: list[str]) -> list[str]:
    """A kernel stack without the frames of the tracing program itself (leaf first)."""
    i = 0
    while i < len(frames) and frames[i].startswith(_TRACER_FRAMES):
        i += 1
    return frames[i:]


class OffCpuTime(Tool):
    name = "offcputime"
    help = "summarize off-CPU time by kernel and user stack"
    bcc = "offcputime"
    options = ("pid", "tid", "duration_pos")
    filters = {"pid": "targ_pid", "tid": "targ_tid"}
    hook_families = ("tp_btf", "raw_tp")
    differs = ("-u/-k (user or kernel threads only), -d and --state are not implemented; "
               "the filters apply to the task switched out, so -c, -n and --uid are refused.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group()
        g.add_argument("-U", "--user-stacks-only", action="store_true")
        g.add_argument("-K", "--kernel-stacks-only", action="store_true")
        p.add_argument("-f", "--folded", action="store_true", help="folded stacks")
        p.add_argument("-m", "--min-block-time", type=positive_int, default=1,
                       help="ignore blocks shorter than this many microseconds")
        p.add_argument("-M", "--max-block-time", type=positive_int, default=(1 << 64) - 1,
                       help="ignore blocks longer than this many microseconds")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"targ_user_only": bool(args.user_stacks_only),
                "targ_kernel_only": bool(args.kernel_stacks_only),
                "targ_min_us": args.min_block_time, "targ_max_us": args.max_block_time}

    def probes(self, args: argparse.Namespace) -> list[Probe]:
        return [self.hook_probe(args, ["tp_btf_switch", "raw_tp_switch"])]

    def loop(self, m: Manager, args: argparse.Namespace, stop: dict[str, bool]) -> int:
        end = time.monotonic() + args.duration if args.duration else None
        try:
            while not stop["now"] and (end is None or time.monotonic() < end):
                time.sleep(0.1 if end is None else max(0.0, min(0.1, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
        self.report(m, args, final=True)
        return 0

    def stacks(self, m: Manager) -> list[dict[str, Any]]:
        """One entry per (task, kernel stack, user stack), most off-CPU time first."""
        st = StackTraceMap(m.map("stacks"))
        out = []
        for k, v in m.map("counts").items():
            us = int.from_bytes(v, "little") if isinstance(v, bytes) else int(v)
            out.append({"pid": int(k.pid), "tgid": int(k.tgid), "comm": plain(k.comm),
                        "kernel_stack": _drop_tracer(st.kernel_stack(k.kern_stack_id)),
                        "user_stack": st.user_stack(k.user_stack_id, int(k.tgid)),
                        "kernel_stack_id": int(k.kern_stack_id),
                        "user_stack_id": int(k.user_stack_id), "usecs": us})
        out.sort(key=lambda e: e["usecs"], reverse=True)
        return out

    def report(self, m: Manager, args: argparse.Namespace, final: bool) -> None:
        entries = self.stacks(m)
        errors = int(m.collection.variables["stack_errors"].value)
        if errors:
            print(f"# {errors} stacks were lost (stack map full)", file=sys.stderr)
        if args.json:
            now = time.time()
            for e in entries:
                print(json.dumps({"time": now, **e}))
            sys.stdout.flush()
            return
        if args.folded:
            print(folded([([*e["kernel_stack"], *e["user_stack"], e["comm"]], e["usecs"])
                          for e in entries]), flush=True)
            return
        for e in reversed(entries):  # BCC prints the largest last
            lines = [f"    {f}" for f in e["kernel_stack"]]
            if e["kernel_stack"] and e["user_stack"]:
                lines.append("    --")
            lines += [f"    {f}" for f in e["user_stack"]]
            lines.append(f"    {'-':<16} {e['comm']} ({e['pid']})")
            lines.append(f"        {e['usecs']}\n")
            print("\n".join(lines))
        sys.stdout.flush()


TOOL = OffCpuTime()
