"""hookcost: what each kind of hook costs per event on this kernel.

Times a loop of getpid() calls with no probe, then with one minimal program attached to
each kind of hook in turn (tracepoint, raw tracepoint, tp_btf, fentry, kprobe, uprobe on
libc's getpid), and prints the overhead per call in ns and percent.  Hooks the kernel
lacks are listed with the reason it gave.  Each round takes the fastest of several runs,
so noise from other processes mostly drops out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..errors import BpfkitError
from .base import Tool, nonneg_u32, object_path, positive_float, positive_int


@dataclass
class Hook:
    name: str          # what users call it
    program: str       # program in hookcost.bpf.o
    hook: str          # where it attaches
    ns: float | None = None
    base_ns: float = 0.0   # no-probe time measured right before/after this hook
    hits: int = 0
    calls: int = 0
    reason: str = ""


HOOKS = [
    ("tracepoint", "on_tracepoint", "tracepoint syscalls/sys_enter_getpid"),
    ("raw_tracepoint", "on_raw_tp", "raw_tp sys_enter (filters getpid)"),
    ("tp_btf", "on_tp_btf", "tp_btf sys_enter (filters getpid)"),
    ("fentry", "on_fentry", "fentry on getpid's kernel function"),
    ("kprobe", "on_kprobe", "kprobe __x64_sys_getpid"),
    ("uprobe", "on_uprobe", "uprobe libc getpid (this process)"),
]


def libc_path() -> str:
    """The libc this interpreter has mapped (where os.getpid() lands)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "/libc.so" in parts[5] or (
                    len(parts) >= 6 and os.path.basename(parts[5]).startswith("libc-")):
                return parts[5]
    raise BpfkitError("hookcost: libc is not mapped in this process (static Python?)")


# The kernel function behind getpid(): names differ by kernel (syscall wrappers are not
# always in BTF, and some kernels lack kallsyms entries for the inner function).
SETTLE_S = 0.01

GETPID_FUNCS = ("__x64_sys_getpid", "__do_sys_getpid", "__se_sys_getpid")


def _btf_func(names: tuple[str, ...]) -> str | None:
    from ..btf import types as bt
    from ..btf.parse import Spec
    kb = Spec.kernel()
    return next((n for n in names if kb.ids_by_name(n, bt.Func)), None)


def _ksym_func(names: tuple[str, ...]) -> str | None:
    from ..symbolize import kaddr
    return next((n for n in names if kaddr(n) is not None), None)


def time_loop(iterations: int, rounds: int) -> float:
    """ns per getpid() call: the fastest of ``rounds`` timed loops."""
    getpid = os.getpid
    rng = range(iterations)
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            for _ in rng:
                getpid()
            best = min(best, (time.perf_counter_ns() - t0) / iterations)
    finally:
        if gc_was:
            gc.enable()
    return best


class HookCost(Tool):
    name = "hookcost"
    help = "what each kind of hook costs per event on this kernel"
    options = ()
    differs = "BCC has no hookcost (a bpfkit benchmark of hook families)."

    def add_args(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("-n", "--iterations", type=positive_int, default=50_000,
                       help="at most this many getpid() calls per timed run (default 50000)")
        p.add_argument("--budget-ms", type=positive_float, default=20.0,
                       help="aim for timed runs of about this long (fewer calls for slow "
                            "hooks; default 20)")
        p.add_argument("-r", "--rounds", type=positive_int, default=15,
                       help="timed runs per hook; the fastest counts (default 15)")
        p.add_argument("--cpu", type=nonneg_u32, help="measure on this CPU (default: the quietest)")
        p.add_argument("--hooks", help="comma-separated subset: " +
                       ",".join(h[0] for h in HOOKS))

    @staticmethod
    def quietest_cpu(cpus: set[int]) -> int:
        """The CPU where a short getpid() loop runs fastest right now."""
        best, best_ns = min(cpus), float("inf")
        for c in sorted(cpus)[:16]:
            try:
                os.sched_setaffinity(0, {c})
            except OSError:
                continue
            ns = time_loop(5000, 3)
            if ns < best_ns:
                best, best_ns = c, ns
        return best

    def iterations_for(self, args: argparse.Namespace) -> int:
        """Fewer calls for slow hooks (a uprobe traps: ~10 us) so a run stays short."""
        per_call = time_loop(2000, 1)
        return max(2000, min(args.iterations, int(args.budget_ms * 1e6 / max(per_call, 1.0))))

    def measure(self, h: Hook, spec: Any, args: argparse.Namespace) -> None:
        """Load one program, attach it, time the loop, check it fired; never raises."""
        me = os.getpid()
        kw: dict[str, Any] = {}
        if h.name == "fentry":
            try:
                fn = _btf_func(GETPID_FUNCS)
            except BpfkitError as e:
                h.reason = f"no kernel BTF: {e}"
                return
            if fn is None:
                h.reason = f"none of {', '.join(GETPID_FUNCS)} is in the kernel's BTF"
                return
            spec = spec.copy()
            spec.programs[h.program].attach_target = fn
        elif h.name == "kprobe":
            fn = _ksym_func(GETPID_FUNCS)
            if fn is not None:
                kw["func"] = fn
        elif h.name == "uprobe":
            kw = {"binary": libc_path(), "symbol": "getpid", "pid": me}
        try:
            coll = spec.load(autoload=[h.program], constants={"targ_pid": me})
        except (BpfkitError, OSError) as e:
            h.reason = f"load refused: {e}"
            return
        try:
            prog = coll.programs[h.program]
            try:
                link = prog.attach(**kw)
            except (BpfkitError, OSError) as e:
                h.reason = f"attach refused: {e}"
                return
            h.hook = getattr(link, "hook", "") or h.hook
            if args.verbose:
                print(f"# {h.name}: {h.program} on {h.hook}", file=sys.stderr)
            n = self.iterations_for(args)
            _close(link)
            # Rounds alternate: no probe, then the probe attached.  The fastest of each
            # compares hook and baseline measured side by side, whatever the drift.
            before = coll.maps["hits"][0]
            base, hooked = float("inf"), float("inf")
            # Attaching and detaching leave work behind (RCU grace periods, kworkers): let
            # it settle before timing, and swap the order every round.
            for r in range(args.rounds):
                if r % 2:
                    base = min(base, time_loop(n, 1))
                link = prog.attach(**kw)
                try:
                    time.sleep(SETTLE_S)
                    hooked = min(hooked, time_loop(n, 1))
                finally:
                    _close(link)
                time.sleep(SETTLE_S)
                if not r % 2:
                    base = min(base, time_loop(n, 1))
            h.ns, h.base_ns = hooked, base
            h.calls = n * args.rounds
            h.hits = coll.maps["hits"][0] - before
        except (BpfkitError, OSError) as e:
            h.reason = h.reason or str(e)
            h.ns = None
        finally:
            coll.close()

    def run(self, args: argparse.Namespace) -> int:
        from ..spec import CollectionSpec
        if args.iterations <= 0 or args.rounds <= 0:
            raise BpfkitError("hookcost: --iterations and --rounds must be positive")
        wanted = [h for h in HOOKS if not args.hooks or h[0] in args.hooks.split(",")]
        if args.hooks:
            unknown = set(args.hooks.split(",")) - {h[0] for h in HOOKS}
            if unknown:
                raise BpfkitError(f"hookcost: unknown hooks {', '.join(sorted(unknown))} "
                                  f"(have: {', '.join(h[0] for h in HOOKS)})")
        spec = CollectionSpec.from_file(object_path("hookcost"))
        if not args.json:
            print(f"# up to {args.iterations} getpid() calls x {args.rounds} rounds per hook, "
                  "alternating with no probe", file=sys.stderr, flush=True)
        # One CPU for every run: CPUs of a VM can differ a lot in speed (host contention),
        # and a loop migrating between them would compare apples and oranges.
        old_cpus = os.sched_getaffinity(0)
        cpu = args.cpu if args.cpu is not None else self.quietest_cpu(old_cpus)
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as e:
            raise BpfkitError(f"hookcost: cannot run on CPU {cpu}: {e}") from None
        try:
            if args.verbose:
                print(f"# measuring on CPU {cpu}", file=sys.stderr)
            time_loop(min(args.iterations, 20000), 1)    # warm up
            hooks = [Hook(*h) for h in wanted]
            for h in hooks:
                self.measure(h, spec, args)
        finally:
            os.sched_setaffinity(0, old_cpus)
        base = [h.base_ns for h in hooks if h.ns is not None]
        baseline = min(base) if base else time_loop(args.iterations, args.rounds)
        self.print_results(baseline, hooks, args)
        return 0

    def print_results(self, baseline: float, hooks: list[Hook], args: argparse.Namespace) -> None:
        rows: list[dict[str, Any]] = []
        for h in hooks:
            ok = h.ns is not None
            over = (h.ns - h.base_ns) if h.ns is not None else None
            rows.append({"hook": h.name, "available": ok, "attach": h.hook,
                         "ns_per_call": round(h.ns, 1) if h.ns is not None else None,
                         "overhead_ns": round(over, 1) if over is not None else None,
                         "baseline_ns": round(h.base_ns, 1) if ok else None,
                         "overhead_percent": round(100.0 * over / h.base_ns, 1)
                         if over is not None else None,
                         "hits": h.hits if ok else None, "calls": h.calls if ok else None,
                         "reason": h.reason})
        if args.json:
            print(json.dumps({"iterations": args.iterations, "rounds": args.rounds,
                              "baseline_ns": round(baseline, 1), "hooks": rows}), flush=True)
            return
        print(f"{'HOOK':<15} {'NS/CALL':>8} {'OVERHEAD':>9} {'%':>7} {'FIRED':>6}  DETAIL")
        print(f"{'none':<15} {baseline:>8.1f} {'-':>9} {'-':>7} {'-':>6}  getpid() loop, no probe")
        for r in rows:
            if r["available"]:
                fired = "yes" if r["hits"] >= r["calls"] else f"{r['hits']}/{r['calls']}"
                print(f"{r['hook']:<15} {r['ns_per_call']:>8.1f} {r['overhead_ns']:>+9.1f} "
                      f"{r['overhead_percent']:>+6.1f}% {fired:>6}  {r['attach']}")
            else:
                print(f"{r['hook']:<15} {'-':>8} {'-':>9} {'-':>7} {'-':>6}  "
                      f"not available: {_short(r['reason'])}")
        sys.stdout.flush()
        if any(r["overhead_ns"] is not None and r["overhead_ns"] < 0 for r in rows):
            print("# a negative overhead means the timing noise (other processes) exceeds "
                  "the hook's cost: use more -r rounds on a quieter machine", file=sys.stderr)


def _close(link: Any) -> None:
    for lk in link if isinstance(link, list) else [link]:
        lk.close()


def _short(reason: str, limit: int = 110) -> str:
    """The kernel's answer first: ``load refused: EPERM (...)`` rather than the command."""
    r = " ".join(reason.split())
    head, sep, tail = r.partition(" failed: ")
    if sep:
        r = head.split(":", 1)[0] + ": " + tail
    return r if len(r) <= limit else r[: limit - 3] + "..."


TOOL = HookCost()
