"""profile: on-CPU sampling profiler with kernel and user stacks.

A perf event fires ``-F`` times a second on every CPU (hardware cycles where the CPU
exposes them, else the cpu-clock software event); the BPF program counts each
(process, kernel stack, user stack).  At the end it prints the top functions, folded
stacks for flame graph tools (``-f``) or writes a flame graph (``--svg FILE``).

Usage as BCC's profile: ``profile [-p PID | -L TID] [-U | -K] [-F FREQ] [-f] [duration]``;
every filter (also ``-c`` cgroup, ``-u`` uid and ``-n`` comm) runs in the BPF code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from ..attach import perf
from ..errors import BpfkitError, ElfError
from ..manager import Manager, OneOf, Probe
from ..symbolize import ProcessSymbols, StackTraceMap, demangle, elf_symbols, ksym
from .base import Tool, plain, positive_int


class Profile(Tool):
    name = "profile"
    help = "on-CPU sampling profiler with stacks, folded output, flame graph"
    bcc = "profile"
    options = ("pid", "tid", "uid", "cgroup", "name", "duration_pos")
    flags = {"tid": ("-L", "--tid")}
    filters = {"pid": "targ_pid", "tid": "targ_tid", "uid": "targ_uid", "cgroup": "targ_cgid",
               "name": "targ_comm"}
    differs = ("-c PATH is a cgroup v2 path (BCC: -c is a sample period; --cgroupmap); "
               "-n NAME and -u UID are ours; the default output is a top-functions table "
               "(BCC: every stack), -f prints folded stacks as BCC's -f; -d, -a, -C and "
               "--stack-storage-size are not implemented.")

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-F", "--frequency", type=positive_int, default=49,
                       help="samples per second per CPU (default 49)")
        p.add_argument("-U", "--user-stacks-only", action="store_true")
        p.add_argument("-K", "--kernel-stacks-only", action="store_true")
        p.add_argument("-I", "--include-idle", action="store_true",
                       help="keep samples of the idle task")
        p.add_argument("-f", "--folded", action="store_true",
                       help="print folded stacks (comm;user...;kernel_[k] count)")
        p.add_argument("--svg", metavar="FILE", help="write a flame graph SVG to FILE")
        p.add_argument("--top", type=positive_int, default=15, help="how many functions to list")

    def constants(self, args: argparse.Namespace) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if args.include_idle:
            c["skip_idle"] = False
        if args.user_stacks_only:
            c["user_only"] = True
        if args.kernel_stacks_only:
            c["kernel_only"] = True
        return c

    def probes(self, args: argparse.Namespace) -> list[OneOf]:
        f = args.frequency
        if f <= 0:
            raise BpfkitError("profile: -F must be a positive frequency")
        return [OneOf([
            Probe("do_sample", uid="cycles",
                  options={"type": perf.PERF_TYPE_HARDWARE, "config": 0, "sample_freq": f}),
            Probe("do_sample", uid="cpu-clock",
                  options={"type": perf.PERF_TYPE_SOFTWARE,
                           "config": perf.PERF_COUNT_SW_CPU_CLOCK, "sample_freq": f}),
        ])]

    def verbose(self, m: Manager, args: argparse.Namespace) -> None:
        self._event = next((st.uid for st in m.report() if st.attached), "?")
        if not args.verbose:
            return
        for st in m.report():
            if st.attached:
                print(f"# sampling with the {st.uid} perf event ({args.frequency} Hz per CPU)",
                      file=sys.stderr)
            elif st.tried:
                print(f"# {st.uid}: not available: {st.reason}", file=sys.stderr)

    def loop(self, m: Manager, args: argparse.Namespace, stop: dict[str, bool]) -> int:
        end = time.monotonic() + args.duration if args.duration else None
        try:
            while not stop["now"]:
                if end is not None and time.monotonic() >= end:
                    break
                time.sleep(0.1 if end is None else max(0.0, min(0.1, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
        self.output(m, args)
        return 0

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _user_resolver(pids: set[int]) -> Any:
        """Symbolize user addresses from /proc/PID/maps read up front: processes that
        exit while we resolve others still get names (from the mapped file's path)."""
        procs: dict[int, ProcessSymbols | None] = {}
        for pid in pids:
            try:
                procs[pid] = ProcessSymbols(pid)
            except BpfkitError:
                procs[pid] = None

        def resolve(addr: int, pid: int) -> str:
            ps = procs.get(pid)
            m = ps.mapping(addr) if ps is not None else None
            if m is None:
                return "[unknown]"
            path = m.path.removesuffix(" (deleted)")
            if not path.startswith("/"):
                return "[anon]" if not path else path       # [vdso], JIT code...
            # Through the process's root first (containers), else the path as we see it.
            for cand in (f"/proc/{pid}/root{path}", path):
                try:
                    es = elf_symbols(cand)
                except (OSError, ElfError, BpfkitError):
                    continue
                va = es.file_offset_to_vaddr(addr - m.start + m.offset)
                s = es.resolve(va) if va is not None else None
                return demangle(s.name) if s is not None else "[unknown]"
            return "[unknown]"
        return resolve

    def samples(self, m: Manager, args: argparse.Namespace) -> list[dict[str, Any]]:
        """One entry per distinct (pid, comm, stacks): frames root first, kernel last."""
        st = StackTraceMap(m.map("stacks"))
        out = []
        items = list(m.map("counts").items())
        usym = self._user_resolver({k.pid for k, _ in items if k.ustack >= 0})
        for k, count in items:
            comm = plain(k.comm)
            user = [usym(a, k.pid) for a in st.stack(k.ustack)]
            kern = [ksym(a, show_offset=False) for a in st.stack(k.kstack)]
            out.append({"pid": k.pid, "tid": k.tid, "comm": comm, "count": int(count),
                        "user": user[::-1], "kernel": kern[::-1],
                        "user_missing": k.ustack < 0 and not args.kernel_stacks_only,
                        "kernel_missing": k.kstack < 0 and not args.user_stacks_only})
        out.sort(key=lambda s: -s["count"])
        return out

    @staticmethod
    def folded_frames(s: dict[str, Any]) -> list[str]:
        return [s["comm"], *s["user"], *(f + "_[k]" for f in s["kernel"])]

    @staticmethod
    def top_functions(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Self samples (the leaf frame) and total samples (anywhere in the stack)."""
        self_c: Counter[str] = Counter()
        total_c: Counter[str] = Counter()
        for s in samples:
            frames = [*s["user"], *(f + " [k]" for f in s["kernel"])]
            if not frames:
                frames = [f"[{s['comm']}]"]
            self_c[frames[-1]] += s["count"]
            for f in set(frames):
                total_c[f] += s["count"]
        n = sum(s["count"] for s in samples) or 1
        return [{"function": f, "self": c, "total": total_c[f],
                 "self_percent": round(100.0 * c / n, 2),
                 "total_percent": round(100.0 * total_c[f] / n, 2)}
                for f, c in self_c.most_common()]

    def output(self, m: Manager, args: argparse.Namespace) -> None:
        samples = self.samples(m, args)
        total = sum(s["count"] for s in samples)
        top = self.top_functions(samples)
        folded: Counter[str] = Counter()
        for s in samples:
            folded[";".join(f.replace(";", ":") for f in self.folded_frames(s))] += s["count"]
        if args.svg:
            from ..flamegraph import write_svg
            write_svg(args.svg, folded, title="bpfkit profile",
                      subtitle=f"{total} samples, {self._event} at {args.frequency} Hz")
            if not args.json:
                print(f"# wrote {args.svg} ({total} samples)", file=sys.stderr)
        if args.json:
            print(json.dumps({"samples": total, "event": self._event,
                              "frequency": args.frequency, "top": top[: args.top],
                              "stacks": [{"pid": s["pid"], "tid": s["tid"], "comm": s["comm"],
                                          "count": s["count"], "user": s["user"],
                                          "kernel": s["kernel"]} for s in samples]}),
                  flush=True)
            return
        if args.folded:
            for line, c in sorted(folded.items()):
                print(f"{line} {c}")
            sys.stdout.flush()
            return
        print(f"{total} samples ({self._event}, {args.frequency} Hz per CPU)")
        print(f"{'SELF':>7} {'SELF%':>6} {'TOTAL':>7} {'TOTAL%':>6}  FUNCTION")
        for t in top[: args.top]:
            print(f"{t['self']:>7} {t['self_percent']:>6.2f} {t['total']:>7} "
                  f"{t['total_percent']:>6.2f}  {t['function']}")
        sys.stdout.flush()


TOOL = Profile()
